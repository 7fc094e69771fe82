"""Errors a person can cause or meet, with messages written for them.

The UI and CLI show ``str(error)`` as it is, so every message here is a plain sentence that says what
went wrong and, where there is one, what to do. Anything that is not a ``HearthError`` is a bug: it is
logged with its traceback.
"""


class HearthError(Exception):
    """Base of every expected failure."""


class InvalidModelError(HearthError):
    """The file is not a usable GGUF model."""


class ModelNotFoundError(HearthError):
    """No model in the library matches what was asked for."""


class ModelLoadError(HearthError):
    """llama.cpp could not load the model."""


class EngineError(HearthError):
    """The engine worker failed or is not in a state to do what was asked."""


class WorkerCrashedError(EngineError):
    """The engine worker process ended unexpectedly."""


class ContextTooSmallError(EngineError):
    """The newest message alone does not fit in the context window."""


class HistoryError(HearthError):
    """The history database cannot be opened or upgraded."""


class LibraryError(HearthError):
    """Adding or removing a model failed for a reason the person can act on."""
