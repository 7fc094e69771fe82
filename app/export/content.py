"""What a readable export says, decided once for Markdown, HTML (and the PDF and print made from it) and Word: a
conversation, a task run or a comparison of Hearth's history file (``app.history.exchange``) becomes a short list of
blocks, and each writer only decides how a block looks. So a conversation says the same in every format, and a new
kind of record is added here once.

A conversation shows the branch its window shows: messages marked ``off_branch`` (the versions not chosen) stay in
the JSON file only. Messages and outputs are Markdown (models write it); inputs people gave are kept exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.compare.figures import concurrency_note, figure_rows, label, shown_entries, verdict_text
from app.compare.report import settings_line, title_of
from app.history.records import ComparisonRecord, EntryRecord, TaskRunRecord
from app.outcomes import FinishReason, RunStatus
from app.tasks.result_words import input_words, metrics_line, result_from_dict, run_options, run_title, went_wrong
from app.words import format_bytes, moment


@dataclass(frozen=True)
class Heading:
    text: str
    level: int  # 1: a conversation, run or comparison; 2: a message or a part of one; 3: within that
    detail: str = ""  # small print beside it (a message's time): Markdown leaves it out, to stay plain to paste


@dataclass(frozen=True)
class Note:
    text: str  # a line of small print: when, which model, what went wrong


@dataclass(frozen=True)
class Text:
    markdown: str  # written by a person or a model: rendered (lists, tables, code blocks highlighted)


@dataclass(frozen=True)
class Verbatim:
    text: str  # an input kept exactly as it was given (a prompt, a document), never read as Markdown


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]  # empty: a table of facts, one per row, with no header
    rows: tuple[tuple[str, ...], ...]
    side_header: bool = False  # the first cell of each row names the row


Block = Heading | Note | Text | Verbatim | Table


@dataclass(frozen=True)
class Readable:
    title: str  # of the file: the one item's, or "Hearth history"
    blocks: tuple[Block, ...]
    items: int  # conversations, runs and comparisons in it


FINISH_NOTES = {FinishReason.LENGTH: "Cut off at its length limit.",
                FinishReason.CANCELLED: "Stopped before its end.",
                FinishReason.INTERRUPTED: "Interrupted before its end.",
                FinishReason.DEGENERATE: "Stopped: it had begun repeating itself."}
RUN_STATUS_NOTES = {RunStatus.RUNNING: "Still running when exported.", RunStatus.CANCELLED: "Stopped before its end.",
                    RunStatus.INTERRUPTED: "Interrupted: Hearth closed while it ran.", RunStatus.FAILED: "Failed."}


def readable(document: dict[str, Any]) -> Readable:
    """The blocks of every conversation, task run and comparison in ``document``, in that order."""
    folders = {folder["id"]: str(folder["name"]) for folder in document.get("folders", [])}
    blocks: list[Block] = []
    titles: list[str] = []
    for conversation in document.get("conversations", []):
        titles.append(str(conversation["title"]))
        blocks += conversation_blocks(conversation, folders)
    for run in document.get("task_runs", []):
        record = task_run_record(run)
        titles.append(run_title(record))
        blocks += task_run_blocks(record)
    for comparison in document.get("comparisons", []):
        comparison_record = comparison_of(comparison)
        titles.append(title_of(comparison_record))
        blocks += comparison_blocks(comparison_record)
    if not titles:
        blocks = [Heading("Hearth history", 1), Note("Nothing to show: the history has no conversations yet.")]
    title = titles[0] if len(titles) == 1 else "Hearth history"
    return Readable(title, tuple(blocks), len(titles))


def conversation_blocks(conversation: dict[str, Any], folders: dict[int, str]) -> list[Block]:
    started = _time(conversation["created_at"])
    facts = [moment(started)]
    if conversation.get("model_name"):
        facts.append(str(conversation["model_name"]))
    if conversation.get("folder_id") in folders:
        facts.append(f"in “{folders[conversation['folder_id']]}”")
    blocks: list[Block] = [Heading(str(conversation["title"]), 1), Note(" · ".join(facts))]
    system = str(conversation.get("system_prompt") or "")
    if system.strip():
        blocks.append(Note(f"System prompt: {' '.join(system.split())}"))
    for message in conversation.get("messages", []):
        if message.get("off_branch"):
            continue
        at = _time(message["created_at"])
        when = f"{at.astimezone():%H:%M}" if at.astimezone().date() == started.astimezone().date() else moment(at)
        blocks += [Heading(_who(message), 2, when), Text(str(message["content"]))]
        if message.get("error"):
            blocks.append(Note(f"Failed: {message['error']}"))
        elif message.get("finish_reason") in FINISH_NOTES:
            blocks.append(Note(FINISH_NOTES[FinishReason(message["finish_reason"])]))
    return blocks


def _who(message: dict[str, Any]) -> str:
    if message["role"] == "user":
        return "You"
    if message["role"] == "system":
        return "System prompt"
    return str(message.get("model_name") or "Assistant")


def task_run_blocks(record: TaskRunRecord) -> list[Block]:
    result = result_from_dict(record.result, record.task)
    facts = [("Task", f"{record.task.capitalize()} · {run_options(record)}"),
             ("Input", f"{input_words(record.input_name)} · {format_bytes(record.input_bytes)}"),
             ("Model", record.model_name or "unknown"), ("Started", moment(record.created_at))]
    figures = metrics_line(record, result) if result is not None else ""
    if figures:
        facts.append(("Figures", figures))
    blocks: list[Block] = [Heading(run_title(record), 1), Table((), tuple(facts), side_header=True)]
    if record.status in RUN_STATUS_NOTES:
        blocks.append(Note(RUN_STATUS_NOTES[record.status]
                           + (f" {record.error}" if record.error and record.status == RunStatus.FAILED else "")))
    wrong = went_wrong(result) if result is not None else ""
    if wrong:
        blocks.append(Note(wrong))
    blocks.append(Heading("Result", 2))
    if record.task == "classify" and result is not None and result.rows:
        blocks.append(Table(("Text", "Labels"), tuple((row.input, ", ".join(row.labels) or "(none)")
                                                      for row in result.rows)))
    elif record.output.strip():
        blocks.append(Text(record.output))
    else:
        blocks.append(Note("No result was written."))
    return blocks


def comparison_blocks(record: ComparisonRecord) -> list[Block]:
    entries = shown_entries(record)
    blocks: list[Block] = [
        Heading(title_of(record), 1),
        Note(f"{moment(record.created_at)} · {settings_line(record)}"),
        Note(f"Verdict: {verdict_text(record)}"),
        Heading(f"Input: {record.input_name}", 2), Verbatim(record.input_text),
        Heading("Outputs", 2)]
    for entry in entries:
        blocks.append(Heading(label(record, entry), 3))
        if entry.status == RunStatus.FAILED:
            blocks.append(Note(f"Failed: {entry.error or 'no reason given'}"))
        elif entry.output.strip():
            blocks.append(Text(entry.output))
        else:
            blocks.append(Note("No output."))
        note = concurrency_note(entry)
        if note:
            blocks.append(Note(note))
    blocks += [Heading("Figures", 2),
               Table(("", *(label(record, entry) for entry in entries)),
                     tuple((title, *cells) for title, cells in figure_rows(record)), side_header=True)]
    machine = [str(line) for line in record.machine.get("summary", [])]
    if machine:
        blocks += [Heading("This computer", 2), Text("\n".join(f"- {line}" for line in machine))]
    return blocks


def task_run_record(fields: dict[str, Any]) -> TaskRunRecord:
    """A task run of the history file as the record the words of ``app.tasks`` are said of."""
    return TaskRunRecord(
        id=int(fields["id"]), created_at=_time(fields["created_at"]), finished_at=_maybe_time(fields["finished_at"]),
        task=str(fields["task"]), status=RunStatus(fields["status"]), parameters=dict(fields.get("parameters") or {}),
        input_name=str(fields["input_name"]), input_kind=str(fields["input_kind"]),
        input_bytes=int(fields["input_bytes"]), input_sha256=str(fields["input_sha256"]),
        input_text=fields.get("input_text"), output=str(fields.get("output") or ""),
        result=dict(fields.get("result") or {}), model_name=fields.get("model_name"),
        model_path=fields.get("model_path"), metrics=dict(fields.get("metrics") or {}), error=fields.get("error"),
        deleted_at=None)


def comparison_of(fields: dict[str, Any]) -> ComparisonRecord:
    """A comparison of the history file as the record ``app.compare``'s figures and words are said of."""
    entries = tuple(EntryRecord(
        id=int(entry["id"]), position=int(entry["position"]), model_name=str(entry["model_name"]),
        model_path=str(entry["model_path"]), file_bytes=int(entry["file_bytes"]), status=RunStatus(entry["status"]),
        output=str(entry.get("output") or ""), result=dict(entry.get("result") or {}),
        metrics=dict(entry.get("metrics") or {}), error=entry.get("error"))
        for entry in sorted(fields.get("entries", []), key=lambda entry: int(entry["position"])))
    return ComparisonRecord(
        id=int(fields["id"]), created_at=_time(fields["created_at"]), finished_at=_maybe_time(fields["finished_at"]),
        kind=str(fields["kind"]), status=RunStatus(fields["status"]), title=str(fields["title"]),
        settings=dict(fields.get("settings") or {}), input_name=str(fields["input_name"]),
        input_kind=str(fields["input_kind"]), input_text=str(fields["input_text"]),
        machine=dict(fields.get("machine") or {}), verdict=fields.get("verdict"),
        winner_position=fields.get("winner_position"), voted_at=_maybe_time(fields.get("voted_at")),
        entries=entries, deleted_at=None)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
