"""The Tasks page: summarize, translate or classify a document. ``page.py`` decides, ``tasks_view.py`` lays it out;
the recent runs, the result panel and the words and item models they show have a module each."""
