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


CHATML_OFFER = "Hearth can write the conversation in ChatML instead, a format most chat models understand."


class ChatTemplateError(EngineError):
    """The model's own chat template failed (it loops, grows without end, refuses the conversation or does not
    compile): the message says so and ends with ``CHATML_OFFER`` (``EngineClient.use_chatml`` takes it up). A task
    reports it as a plain ``EngineError`` with the same message."""


class ContextTooSmallError(EngineError):
    """The newest message alone does not fit in the context window."""


class HistoryError(HearthError):
    """The history database cannot be opened or upgraded."""


class LibraryError(HearthError):
    """Adding or removing a model failed for a reason the person can act on."""


class DocumentError(HearthError):
    """A document could not be read. ``file_name`` is the file's name as the person knows it (or "Pasted text").

    Every message names the file, because the person may have opened several at once.
    """

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(message or f"Hearth could not read “{file_name}”.")
        self.file_name = file_name

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from the name and the final message (plus attributes), so it survives a trip through a pipe.
        return type(self), (self.file_name, str(self)), self.__dict__


class DocumentNotFoundError(DocumentError):
    """The file is not where it was: moved, renamed, deleted, or on a drive that is not connected."""

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(file_name, message or
                         f"“{file_name}” could not be found. It may have been moved, renamed or deleted.")


class UnsupportedDocumentError(DocumentError):
    """Not a type of document Hearth reads; the message says which types it does."""

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(file_name, message or f"Hearth cannot read “{file_name}”: this type of file is not supported.")


class DocumentTooLargeError(DocumentError):
    """Bigger than Hearth opens (the file, or the text in it)."""

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(file_name, message or f"“{file_name}” is too large to open.")


class EmptyDocumentError(DocumentError):
    """The document opened but holds no text."""

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(file_name, message or f"“{file_name}” has no text in it.")


class EncryptedDocumentError(DocumentError):
    """The document needs a password; ``wrong_password`` says whether one was given and did not fit."""

    def __init__(self, file_name: str, message: str | None = None, *, wrong_password: bool = False) -> None:
        if message is None:
            message = (f"The password for “{file_name}” is not correct. Check it and try again." if wrong_password
                       else f"“{file_name}” is protected with a password. Enter its password to open it.")
        super().__init__(file_name, message)
        self.wrong_password = wrong_password


class NoTextLayerError(DocumentError):
    """A PDF whose pages are only pictures (usually a scan): there is no text to take out without OCR."""

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(file_name, message or (
            f"“{file_name}” has no text layer: its pages are images, probably scanned. "
            "Hearth cannot read text from images (OCR is not supported)."))


class DamagedDocumentError(DocumentError):
    """Truncated, corrupt, not really the type its name says, or built to cause trouble."""

    def __init__(self, file_name: str, message: str | None = None) -> None:
        super().__init__(file_name, message or (
            f"“{file_name}” could not be read: it looks damaged, or it is not the type of file its name says."))
