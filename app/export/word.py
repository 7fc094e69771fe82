"""A readable export as a Word document (python-docx), to edit in Word, LibreOffice or Google Docs.

Messages are Markdown, read by the same parser as the HTML page (``app.export.html.parser``) and written with Word's
own styles, so the document reflows and restyles as people expect: headings as Heading styles, lists as List
Bullet and List Number (three levels deep), quotes as Quote, tables as Word tables, code in a monospace font on a
tinted background. A link keeps its address in brackets after its text; a new conversation starts on a new page.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from app.export.content import Heading, Note, Readable, Text, Verbatim
from app.export.html import parser

if TYPE_CHECKING:
    from docx.document import Document
    from docx.text.paragraph import Paragraph
    from markdown_it.token import Token

MONOSPACE = "Courier New"  # on every Windows and Mac; LibreOffice puts its metric twin in its place
CODE_FILL = "F6F1EA"
HEADER_FILL = "F6EFE6"
GREY = (0x6B, 0x62, 0x5A)
MESSAGE_HEADING_SHIFT = 2  # a message is under Heading 2, so its own "# Title" is Heading 3


def word_bytes(readable: Readable) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = readable.title
    first = True
    for block in readable.blocks:
        if isinstance(block, Heading):
            heading = document.add_heading(block.text, min(max(block.level, 1), 9))
            if block.level == 1:
                heading.paragraph_format.page_break_before = not first
                first = False
            if block.detail:
                _small(heading.add_run(f"   {block.detail}"), bold=False)
        elif isinstance(block, Note):
            _small(document.add_paragraph().add_run(block.text), italic=True)
        elif isinstance(block, Text):
            _Markdown(document).write(block.markdown)
        elif isinstance(block, Verbatim):
            _lines(_shaded(document.add_paragraph()), block.text, monospace=False)
        else:
            _table(document, [[(bool(block.header), cell) for cell in block.header]] if block.header else [],
                   [[(block.side_header and i == 0, cell) for i, cell in enumerate(row)] for row in block.rows])
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class _Markdown:
    """Markdown's block tokens written into ``document`` one by one: where the text goes (a paragraph, a list item, a
    table cell) is the state kept between them."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.lists: list[bool] = []  # ordered, for each list the text is in
        self.item_started = False  # the current list item has its bulleted paragraph already
        self.quotes = 0
        self.paragraph: Paragraph | None = None
        self.rows: list[list[tuple[bool, Token]]] | None = None  # a table being read
        self.header = False

    def write(self, markdown: str) -> None:
        for token in parser().parse(markdown):
            self._token(token)

    def _token(self, token: Token) -> None:
        kind = token.type
        if kind == "heading_open":
            self.paragraph = self.document.add_heading("", min(int(token.tag[1:]) + MESSAGE_HEADING_SHIFT, 9))
        elif kind == "paragraph_open" and self.rows is None:
            self.paragraph = self.document.add_paragraph(style=self._paragraph_style())
        elif kind == "inline":
            if self.rows is not None:
                self.rows[-1].append((self.header, token))
            elif self.paragraph is not None:
                _runs(self.paragraph, token.children or [])
        elif kind in ("fence", "code_block"):
            paragraph = _shaded(self.document.add_paragraph(style=self._paragraph_style()))
            _lines(paragraph, token.content.rstrip("\n"), monospace=True)
        elif kind in ("bullet_list_open", "ordered_list_open"):
            self.lists.append(kind == "ordered_list_open")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
        elif kind == "list_item_open":
            self.item_started = False
        elif kind == "blockquote_open":
            self.quotes += 1
        elif kind == "blockquote_close":
            self.quotes -= 1
        elif kind == "hr":
            from docx.enum.text import WD_ALIGN_PARAGRAPH

            self.document.add_paragraph("⁂").alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif kind == "table_open":
            self.rows = []
        elif kind == "tr_open" and self.rows is not None:
            self.rows.append([])
        elif kind in ("th_open", "td_open"):
            self.header = kind == "th_open"
        elif kind == "table_close" and self.rows is not None:
            head = [self.rows[0]] if self.rows and all(is_header for is_header, _ in self.rows[0]) else []
            _table(self.document, head, self.rows[len(head):])
            self.rows = None

    def _paragraph_style(self) -> str | None:
        if self.lists:
            depth = "" if len(self.lists) == 1 else f" {min(len(self.lists), 3)}"
            if self.item_started:
                return f"List Continue{depth}"
            self.item_started = True
            return f"{'List Number' if self.lists[-1] else 'List Bullet'}{depth}"
        return "Quote" if self.quotes else None


def _runs(paragraph: Paragraph, children: list[Token]) -> None:
    """The inline tokens of a paragraph as formatted runs."""
    bold = italic = strike = 0
    links: list[tuple[str, int]] = []  # address, where its text starts
    written: list[str] = []
    for token in children:
        kind = token.type
        if kind in ("text", "html_inline"):
            run = paragraph.add_run(token.content)
            run.bold, run.italic, run.font.strike = bool(bold), bool(italic), bool(strike)
            written.append(token.content)
        elif kind == "code_inline":
            paragraph.add_run(token.content).font.name = MONOSPACE
            written.append(token.content)
        elif kind == "softbreak":
            paragraph.add_run(" ")
        elif kind == "hardbreak":
            paragraph.add_run().add_break()
        elif kind in ("strong_open", "strong_close"):
            bold += token.nesting
        elif kind in ("em_open", "em_close"):
            italic += token.nesting
        elif kind in ("s_open", "s_close"):
            strike += token.nesting
        elif kind == "link_open":
            links.append((str(token.attrs.get("href", "")), len(written)))
        elif kind == "link_close" and links:
            address, start = links.pop()
            if address and address != "".join(written[start:]):
                _small(paragraph.add_run(f" ({address})"))


def _lines(paragraph: Paragraph, text: str, *, monospace: bool) -> None:
    """Lines kept as lines (breaks, not new paragraphs): a code block stays one block."""
    from docx.shared import Pt

    for i, line in enumerate(text.split("\n")):
        run = paragraph.add_run()
        if i:
            run.add_break()
        run.add_text(line)
        if monospace:
            run.font.name = MONOSPACE
            run.font.size = Pt(9)


def _table(document: Document, head: list[list[tuple[bool, Any]]], rows: list[list[tuple[bool, Any]]]) -> None:
    """A Word table; a cell is text, or an inline token whose runs keep their formatting."""
    width = max((len(row) for row in [*head, *rows]), default=0)
    if not width:
        return
    table = document.add_table(rows=0, cols=width)
    table.style = "Table Grid"
    for is_head_row, row in [(True, r) for r in head] + [(False, r) for r in rows]:
        cells = table.add_row().cells
        for cell, (is_header, content) in zip(cells, row, strict=False):
            paragraph = cell.paragraphs[0]
            if isinstance(content, str):
                paragraph.add_run(content)
            else:
                _runs(paragraph, content.children or [])
            if is_header or is_head_row:
                for run in paragraph.runs:
                    run.bold = True
                _fill(cell._tc.get_or_add_tcPr(), HEADER_FILL)
    document.add_paragraph()  # Word joins two tables that touch; a paragraph keeps the next block apart


def _shaded(paragraph: Paragraph) -> Paragraph:
    _fill(paragraph._p.get_or_add_pPr(), CODE_FILL)
    return paragraph


def _fill(properties: Any, colour: str) -> None:
    """A background, set before any other property of the paragraph (or cell), so Word finds its elements in the
    order its schema asks for."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), colour)
    properties.append(shading)


def _small(run: Any, *, italic: bool = False, bold: bool | None = None) -> None:
    from docx.shared import Pt, RGBColor

    run.font.size = Pt(9)
    run.font.color.rgb = RGBColor(*GREY)
    run.italic = italic or None
    if bold is not None:
        run.bold = bold
