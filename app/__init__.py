"""Hearth's core: everything the app does, with no Qt, so the CLI and tests drive it directly."""

__version__ = "0.1.0"
