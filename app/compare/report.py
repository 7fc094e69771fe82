"""A comparison as one self-contained file: HTML (styles and chart inside) or Markdown.

The chart comes in as PNG bytes drawn by the window's chart (the core draws nothing itself) and is
embedded as a data URI, so the file can be mailed or moved without losing its picture.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from app import __version__
from app.compare.figures import concurrency_note, figure_rows, label, shown_entries, verdict_text
from app.compare.spec import KIND_WORDS
from app.history import ComparisonRecord, EntryRecord
from app.outcomes import RunStatus
from app.tasks.export import write_atomically

REPORT_SUFFIXES = (".html", ".md")

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #2b2622; background: #fffdf9; line-height: 1.45; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.meta { color: #6b625a; } table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #e4dcd2; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f6efe6; } .columns { display: grid; gap: 1em;
grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); }
.column { border: 1px solid #e4dcd2; border-radius: 8px; padding: 0.6em 0.9em; background: #fff; }
.output { white-space: pre-wrap; font-family: inherit; margin: 0; } .note { color: #6b625a; font-size: 0.9em; }
.input { white-space: pre-wrap; background: #f6efe6; padding: 0.6em 0.9em; border-radius: 6px;
         max-height: 20em; overflow: auto; } img { max-width: 100%; }
"""


def title_of(record: ComparisonRecord) -> str:
    return f"{KIND_WORDS.get(record.kind, record.kind)} comparison: {record.title}"


def _when(record: ComparisonRecord) -> str:
    return record.created_at.astimezone().strftime("%Y-%m-%d %H:%M")


def settings_line(record: ComparisonRecord) -> str:
    s = record.settings
    temperature = "deterministic (temperature 0)" if s.get("deterministic") else f"temperature {s.get('temperature')}"
    parts = [temperature, f"seed {s.get('seed')}"]
    if record.kind == "chat":
        parts.append(f"up to {s.get('max_tokens')} tokens")
    task = s.get("task") or {}
    if record.kind == "summarize":
        parts.append(f"length: {task.get('length')}")
    elif record.kind == "translate":
        parts.append(f"into {task.get('target')}")
    elif record.kind == "classify":
        parts.append("labels: " + ", ".join(label["name"] for label in task.get("labels", [])))
    if s.get("blind"):
        parts.append("blind")
    return "; ".join(str(part) for part in parts)


def _output_of(entry: EntryRecord) -> str:
    if entry.status == RunStatus.FAILED:
        return f"(Failed: {entry.error or 'no reason given'})"
    return entry.output or "(no output)"


def render_html(record: ComparisonRecord, chart_png: bytes | None = None) -> str:
    e = html.escape
    entries = shown_entries(record)
    heads = "".join(f"<th>{e(label(record, entry))}</th>" for entry in entries)
    rows = "".join(f"<tr><th>{e(title)}</th>{''.join(f'<td>{e(cell)}</td>' for cell in cells)}</tr>"
                   for title, cells in figure_rows(record))
    columns = []
    for entry in entries:
        note = concurrency_note(entry)
        columns.append(f'<div class="column"><h3>{e(label(record, entry))}</h3>'
                       f'<pre class="output">{e(_output_of(entry))}</pre>'
                       + (f'<p class="note">{e(note)}</p>' if note else "") + "</div>")
    chart = ""
    if chart_png:
        data = base64.b64encode(chart_png).decode("ascii")
        chart = f'<h2>Speed and memory</h2><img alt="Speed and memory per model" src="data:image/png;base64,{data}">'
    machine = "".join(f"<li>{e(line)}</li>" for line in record.machine.get("summary", []))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title_of(record))}</title><style>{_STYLE}</style></head>
<body>
<h1>{e(title_of(record))}</h1>
<p class="meta">{e(_when(record))} · {e(settings_line(record))} · {e(verdict_text(record))}</p>
<h2>Input: {e(record.input_name)}</h2>
<div class="input">{e(record.input_text)}</div>
<h2>Outputs</h2>
<div class="columns">{''.join(columns)}</div>
<h2>Figures</h2>
<table><tr><th></th>{heads}</tr>{rows}</table>
{chart}
<h2>This computer</h2>
<ul>{machine}</ul>
<p class="note">Made with Hearth {e(__version__)}. Everything ran on this computer.</p>
</body></html>
"""


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(record: ComparisonRecord, chart_png: bytes | None = None) -> str:
    entries = shown_entries(record)
    lines = [f"# {title_of(record)}", "", f"{_when(record)} · {settings_line(record)} · {verdict_text(record)}", "",
             f"## Input: {record.input_name}", "", _fence(record.input_text), "", "## Figures", "",
             "| | " + " | ".join(_cell(label(record, entry)) for entry in entries) + " |",
             "|---" * (len(entries) + 1) + "|"]
    lines += [f"| {_cell(title)} | " + " | ".join(_cell(cell) for cell in cells) + " |"
              for title, cells in figure_rows(record)]
    if chart_png:
        data = base64.b64encode(chart_png).decode("ascii")
        lines += ["", "## Speed and memory", "", f"![Speed and memory per model](data:image/png;base64,{data})"]
    lines += ["", "## Outputs"]
    for entry in entries:
        lines += ["", f"### {label(record, entry)}", "", _fence(_output_of(entry))]
        note = concurrency_note(entry)
        if note:
            lines += ["", f"*{note}*"]
    lines += ["", "## This computer", ""] + [f"- {line}" for line in record.machine.get("summary", [])]
    lines += ["", f"*Made with Hearth {__version__}. Everything ran on this computer.*", ""]
    return "\n".join(lines)


def save_report(record: ComparisonRecord, path: Path, chart_png: bytes | None = None) -> Path:
    """Write the report as HTML or Markdown, by the file's suffix (HTML when it has neither).

    Raises:
        ExportError: the file cannot be written.
    """
    if path.suffix.lower() not in REPORT_SUFFIXES:
        path = path.with_suffix(".html")
    text = render_markdown(record, chart_png) if path.suffix.lower() == ".md" else render_html(record, chart_png)
    data = text.encode("utf-8")
    write_atomically(path, lambda handle: handle.write(data))
    return path
