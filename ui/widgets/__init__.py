"""Widgets more than one page shows: the document form of Tasks and Compare (drop zone, text box, the task's
options), the segmented picker, section labels and the undo bar. They show and collect; the pages decide."""
