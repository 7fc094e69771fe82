"""The Models page: the library of models on this computer. ``page.py`` decides, ``library_view.py`` lays it out."""
