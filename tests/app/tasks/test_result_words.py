"""A finished run's line of figures, the same in the window and the terminal: plain words, no machinery."""

from __future__ import annotations

from pathlib import Path

from app.history import HistoryStore, open_database
from app.outcomes import RunStatus
from app.tasks.result_words import metrics_line
from app.tasks.spec import Part, TaskResult


def test_a_summary_in_levels_is_said_without_them(tmp_path: Path) -> None:
    db = open_database(tmp_path / "history.sqlite3")
    try:
        store = HistoryStore(db)
        run = store.start_task_run("summarize", parameters={}, input_name="report.pdf", input_kind="pdf",
                                   input_bytes=1, input_sha256="0" * 64, input_text=None, model_name="M",
                                   model_path="/m.gguf")
        result = TaskResult("summarize", "Gist.", RunStatus.DONE, document_tokens=21_400, covered_tokens=21_400,
                            chunks=9, levels=2, model_tokens_processed=23_900,
                            parts=tuple(Part(i, f"pages {i}", i, i, 2_400, "…") for i in range(1, 10)))
        store.finish_task_run(run, status="done", output="Gist.", result=result.to_dict(), metrics={"total_s": 100})
        line = metrics_line(store.get_task_run(run), result, "38 pages")
    finally:
        db.close()
    assert line == "Read all 38 pages (21,400 of 21,400 tokens) in 9 parts · 23,900 tokens processed · 1m 40s"
