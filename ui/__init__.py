"""Hearth's window: views and Qt models over the core in ``app/``. Nothing here computes or blocks."""
