"""The welcome page of a first start. ``page.py`` decides, ``welcome_view.py`` lays it out."""
