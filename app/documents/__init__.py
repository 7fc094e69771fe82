"""Text out of the documents people bring: PDF, Word (.docx), web pages, Markdown, plain text, or pasted text.

A document becomes a list of paragraphs in reading order, each with the PDF page it is on and the section
heading above it, so a summary or translation can say where something came from ("pages 3–5").

Documents come from anywhere, and PDF, DOCX and HTML parsers have to trust structure inside the file. So those
three are parsed in a short-lived child process (``spawn``, like the engine worker and the dry run) with a cap
on its memory (where the OS allows one) and a wall-clock timeout: a reference loop, a zip bomb, a decompression
bomb or a parser crash becomes a :class:`~app.errors.DamagedDocumentError`, never a hung or dead app. Word files
are also checked before parsing: a zip whose entries would unpack to far more than a real document is refused
without unpacking anything. Plain text and Markdown are read in this process; the file size limit bounds them.

Text files are decoded as UTF-8 (with or without a BOM), UTF-16/32 when a BOM says so, else Windows-1252;
bytes that are not text (NUL bytes, many control characters) are refused even when the file is named ``.txt``.

Not supported: OpenDocument (.odt) and RTF, which would each need another parser library for few users (save
them as .docx or PDF), legacy Word (.doc), password-protected Word files, and scanned PDFs (no OCR). From a Word
file only the body's paragraphs and tables are read: not headers, footers, footnotes, comments or text boxes.

``reader`` is the way in (``read_document``, ``document_from_text``) and ``document`` what comes out; ``text``,
``pdf``, ``word`` and ``web_page`` read one format each, ``isolated`` is the child process the last three run
in, and ``location`` says where a passage is in words.
"""
