"""``hearth history export`` in every format, run as the entry point runs it (``app.cli.main.main``) on a home of
the test's own; the PDF, which needs Qt's writer, is under tests/ui/export."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docx
import pytest

from app.cli.main import main

from tests.app.export.history import ANSWER, RIGHT_OUTPUT, SUMMARY, Saved, saved_history
from tests.helpers import ROOT


@pytest.fixture
def saved(hearth_home: Path) -> Iterator[Saved]:
    """The history the command reads, and the root logger as it was (the command points it at its own log)."""
    root = logging.getLogger()
    handlers, level, raising = list(root.handlers), root.level, logging.raiseExceptions
    yield saved_history(hearth_home)
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers, logging.raiseExceptions = handlers, raising
    root.setLevel(level)


def test_every_format_from_the_command_line(saved: Saved, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "export", "--conversation", str(saved.chat), "--format", "md",
                 "-o", str(tmp_path / "chat.md")]) == 0
    assert ANSWER in (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert main(["history", "export", "--all", "--format", "html", "-o", str(tmp_path / "all.html")]) == 0
    assert "<table>" in (tmp_path / "all.html").read_text(encoding="utf-8")
    assert main(["history", "export", "--task-run", str(saved.summary_run), "-o", str(tmp_path / "run.docx")]) == 0
    run = [p.text for p in docx.Document(str(tmp_path / "run.docx")).paragraphs]
    assert SUMMARY.splitlines()[0].replace("**", "") in run and "Rent: 1,150 euros" in run
    assert main(["history", "export", "--comparison", str(saved.comparison), "--format", "json",
                 "-o", str(tmp_path / "comparison")]) == 0
    comparison = json.loads((tmp_path / "comparison").read_text(encoding="utf-8"))
    assert [entry["output"] for entry in comparison["comparisons"][0]["entries"]][1] == RIGHT_OUTPUT
    assert main(["history", "export", "-o", str(tmp_path / "everything.json")]) == 0  # the default: everything
    assert len(json.loads((tmp_path / "everything.json").read_text(encoding="utf-8"))["task_runs"]) == 2
    said = capsys.readouterr().out.splitlines()
    assert said == [f"Wrote the conversation “Reading files” to {tmp_path / 'chat.md'}.",
                    f"Wrote 2 conversations, 2 task runs and 1 comparison to {tmp_path / 'all.html'}.",
                    f"Wrote the summary of “lease.pdf” to {tmp_path / 'run.docx'}.",
                    f"Wrote the comparison “Capital of France” to {tmp_path / 'comparison'}.",
                    f"Wrote 2 conversations, 2 task runs and 1 comparison to {tmp_path / 'everything.json'}."]


def test_what_is_missing_or_cannot_be_written_is_one_sentence(saved: Saved, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "export", "--task-run", "42", "-o", str(tmp_path / "x.md")]) == 1
    assert capsys.readouterr().err == ("hearth: That task run is no longer in the history (see `hearth history "
                                       "search`).\n")
    assert main(["history", "export", "--all", "--format", "pdf", "-o", str(tmp_path / "all.pdf")]) == 1
    assert capsys.readouterr().err.startswith("hearth: Hearth cannot write a PDF here: ")
    assert not list(tmp_path.glob("*.pdf")) and not list(tmp_path.glob("*.md"))
    with pytest.raises(SystemExit):
        main(["history", "export", "--all", "--comparison", "1", "-o", str(tmp_path / "x.md")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_exporting_without_a_pdf_does_not_start_qt(saved: Saved, tmp_path: Path) -> None:
    """The command line starts fast and without a display: Qt is imported for a PDF only."""
    code = ("import sys\nfrom ui.entry import main\nsys.argv = ['hearth', *sys.argv[1:]]\ncode = main()\n"
            "print(code, 'PySide6' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, "history", "export", "--format", "docx",
                           "-o", str(tmp_path / "all.docx")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert done.stdout.splitlines()[-1] == "0 False", done.stderr
    assert (tmp_path / "all.docx").stat().st_size > 0


def test_a_folder_is_exported_and_searched_by_its_name(saved: Saved, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from app.history import HistoryStore, open_database
    from app.paths import Paths

    store = HistoryStore(open_database(Paths.from_environment().database))
    work = store.create_folder("Work")
    store.move_conversation(saved.chat, work.id)
    store.create_folder("Empty")
    store.close()
    assert main(["history", "export", "--folder", "empty", "-o", str(tmp_path / "empty.md")]) != 0
    assert "That folder has no conversations to export" in capsys.readouterr().err
    assert main(["history", "export", "--folder", "work", "--format", "md", "-o", str(tmp_path / "work.md")]) == 0
    assert ANSWER in (tmp_path / "work.md").read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == f"Wrote the conversation “Reading files” to {tmp_path / 'work.md'}."
    assert main(["history", "search", "files", "--folder", "Work", "--json"]) == 0
    matches = json.loads(capsys.readouterr().out)["matches"]
    assert matches and {m["id"] for m in matches} == {saved.chat}
    assert main(["history", "export", "--folder", "Home", "-o", str(tmp_path / "home.md")]) != 0
    assert "There is no folder called “Home” (the folders: “Empty”, “Travel”, “Work”)." in capsys.readouterr().err
    assert not (tmp_path / "home.md").exists()
