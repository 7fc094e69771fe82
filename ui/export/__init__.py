"""Export and print, in the window: the dialog that chooses what and how (``export_dialog``), the flow from the
File menu to a file on disk (``exporter``), and Qt's PDF writer and printing of the core's HTML page (``pdf``).
Not a page of the stack: the window and the pages call it."""
