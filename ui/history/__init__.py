"""Keeping the history: its backups (make one, restore one), what a start does with a damaged history, and importing
history files. Not a page of the stack: File menu actions and dialogs; ``keeper.py`` decides, the dialogs lay out."""
