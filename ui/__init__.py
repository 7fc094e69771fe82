"""Hearth's window: views and Qt models over the core in ``app/``. Nothing here computes or blocks.

``main.py`` builds the services and starts the window; ``main_window.py`` is the shell that composes the pages and
routes their signals; ``model_loader.py`` is the one flow that loads a model. One package per page (``chat``,
``library``, ``discover``, ``welcome``, ``tasks``, ``compare``, ``privacy``): its ``page.py`` decides, its
``*_view.py`` lays out. ``qt/`` is the Qt plumbing every page shares, ``widgets/`` the widgets more than one shows.
"""
