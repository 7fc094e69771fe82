"""Taking the history away: a conversation, some conversations (a folder), a task run, a comparison or everything,
as Markdown, a web page, a PDF, a Word document or Hearth's own JSON history file.

``files.write_export`` is the one way in, for the window and the command line alike; ``content`` decides what a
readable file says, and ``markdown``, ``html`` and ``word`` only how it looks. Printing and the PDF are Qt's, so they
live in ``ui/export``, which hands its PDF writer in.
"""
