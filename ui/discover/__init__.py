"""The Discover page: the catalog, Hub search, a model's files with the forecast for each, and the downloads.
``page.py`` decides, ``discover_view.py`` lays it out."""
