"""A readable export as Markdown: messages and outputs are Markdown already (models write it), so they are kept as
written, and the rest is put in the same plain form, to paste into notes or a wiki."""

from __future__ import annotations

import re

from app.export.content import Block, Heading, Note, Readable, Table, Text, Verbatim


def markdown_text(readable: Readable) -> str:
    out: list[str] = []
    for block in readable.blocks:
        if out:
            out.append("\n\n\n" if isinstance(block, Heading) and block.level == 1 else "\n\n")
        out.append(_block(block))
    return "".join(out) + "\n"


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {_one_line(block.text)}"
    if isinstance(block, Note):
        return "*" + _one_line(block.text).replace("*", "\\*") + "*"
    if isinstance(block, Text):
        return block.markdown.strip("\n").rstrip()
    if isinstance(block, Verbatim):
        return fenced(block.text)
    return _table(block)


def fenced(text: str) -> str:
    """``text`` in a code fence longer than any run of backticks inside it, so nothing in it can end the fence."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _table(table: Table) -> str:
    width = len(table.header) or max((len(row) for row in table.rows), default=1)
    header = table.header or ("",) * width
    lines = ["| " + " | ".join(_cell(cell) for cell in header) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _one_line(text: str) -> str:
    return " ".join(text.split())
