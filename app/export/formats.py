"""The formats an export is written in, and how the window and the command line name them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path


class ExportFormat(StrEnum):
    MARKDOWN = "md"
    HTML = "html"
    PDF = "pdf"
    DOCX = "docx"
    JSON = "json"

    @property
    def suffix(self) -> str:
        return f".{self.value}"

    @property
    def name_words(self) -> str:
        return _WORDS[self][0]

    @property
    def use_words(self) -> str:
        """What the format is good for, so a person who knows none of the names can choose."""
        return _WORDS[self][1]

    @property
    def file_filter(self) -> str:
        """For a save dialog: "Web page (*.html)"."""
        return f"{self.name_words} (*{self.suffix})"

    @classmethod
    def of_path(cls, path: Path) -> ExportFormat | None:
        """The format a file name asks for by its suffix, if any."""
        try:
            return cls(path.suffix.lower().removeprefix("."))
        except ValueError:
            return None


_WORDS = {
    ExportFormat.PDF: ("PDF document", "to read, print or send; looks the same everywhere"),
    ExportFormat.DOCX: ("Word document", "to edit in Word, LibreOffice or Google Docs"),
    ExportFormat.HTML: ("Web page", "one file for any browser; code and tables laid out"),
    ExportFormat.MARKDOWN: ("Markdown", "plain text for notes apps, wikis and GitHub"),
    ExportFormat.JSON: ("Hearth history file (JSON)", "everything kept, for another Hearth or your programs"),
}
