"""A small history with one of everything an export shows, as the app would leave it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.history import HistoryStore, open_database
from app.tasks.spec import ClassifiedText, TaskResult

QUESTION = "How do I read a file? <script>alert('gotcha')</script>"
ANSWER = """Use **pathlib**:

```python
from pathlib import Path
text = Path("notes.txt").read_text()
```

| Way | Speed |
|-----|-------|
| pathlib | quick |
| open() | quick too |

- first, open it
- then read it
  - nested point

See [the docs](https://docs.python.org/3/library/pathlib.html)."""
OLD_ANSWER = "An answer nobody kept on the branch shown."
SUMMARY = "The lease runs for **two years**.\n\n- Rent: 1,150 euros\n- One cat allowed"
LEFT_OUTPUT = "Paris is the capital of France."
RIGHT_OUTPUT = "It is Paris, on the Seine."


@dataclass(frozen=True)
class Saved:
    store: HistoryStore
    chat: int
    other_chat: int
    summary_run: int
    labels_run: int
    comparison: int


def saved_history(home: Path) -> Saved:
    from app.paths import Paths

    store = HistoryStore(open_database(Paths.under(home).ensure().database))
    chat = store.create_conversation("Reading files", {"system_prompt": "Answer briefly."}, model_name="Qwen")
    store.add_message(chat.id, "user", QUESTION)
    old = store.add_message(chat.id, "assistant", OLD_ANSWER, model_name="Qwen", finish_reason="stop")
    store.add_message(chat.id, "assistant", ANSWER, model_name="Qwen", finish_reason="stop", version_of=old.id)
    other = store.create_conversation("Trip to Paris", {}, model_name="Gemma")
    store.add_message(other.id, "user", "Where is the station?")
    store.add_message(other.id, "assistant", "Near the river.", model_name="Gemma", finish_reason="length")
    store.move_conversation(other.id, store.create_folder("Travel").id)

    lease = "The lease of the flat runs for two years. The rent is 1,150 euros a month. One cat is allowed."
    summary_run = store.start_task_run("summarize", parameters={"length": "points"}, input_name="lease.pdf",
                                       input_kind="pdf", input_bytes=48_000, input_sha256="0" * 64, input_text=lease,
                                       model_name="SmolLM2", model_path=None)
    result = TaskResult("summarize", SUMMARY, "done", chunks=1, levels=1, document_tokens=30, covered_tokens=30)
    store.finish_task_run(summary_run, status="done", output=SUMMARY, result=result.to_dict(),
                          metrics={"total_s": 4.2, "tokens_per_s": 31.5, "peak_rss_bytes": 412_000_000})
    labels_run = store.start_task_run(
        "classify", parameters={"labels": [{"name": "bill"}, {"name": "letter"}], "multi": False},
        input_name="Typed texts", input_kind="lines", input_bytes=40, input_sha256="1" * 64, input_text=None,
        model_name="SmolLM2", model_path=None)
    rows = (ClassifiedText("Your gas bill is due", ("bill",), {"bill": 0.9}),
            ClassifiedText("Dear aunt Mira", ("letter",), {"letter": 0.8}))
    labelled = TaskResult("classify", "", "done", rows=rows)
    store.finish_task_run(labels_run, status="done", output="bill\tYour gas bill is due\nletter\tDear aunt Mira",
                          result=labelled.to_dict(), metrics={})

    comparison = store.start_comparison(
        "chat", title="Capital of France", settings={"temperature": 0.7, "seed": 42, "max_tokens": 64},
        input_name="Prompt", input_kind="prompt", input_text="What is the capital of France?",
        machine={"summary": ["16 GB of memory", "8 processor cores"]},
        models=[("Qwen", "/models/qwen.gguf", 400_000_000), ("Gemma", "/models/gemma.gguf", 300_000_000)])
    store.update_entry(comparison.id, 0, status="done", output=LEFT_OUTPUT,
                       metrics={"load_s": 1.2, "ttft_s": 0.3, "tokens_per_s": 42.0, "output_tokens": 9})
    store.update_entry(comparison.id, 1, status="done", output=RIGHT_OUTPUT,
                       metrics={"load_s": 0.9, "ttft_s": 0.2, "tokens_per_s": 55.5, "output_tokens": 8})
    store.finish_comparison(comparison.id, "done")
    store.vote(comparison.id, "winner", 1)
    return Saved(store, chat.id, other.id, summary_run, labels_run, comparison.id)
