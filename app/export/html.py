"""A readable export as one self-contained web page: styles inside (also for printing), nothing fetched when it is
opened, code blocks coloured by Pygments with inline styles and Markdown tables laid out as tables.

The same page is what the window prints and turns into a PDF (Qt's ``QTextDocument`` reads it), so it keeps to the
HTML and CSS that Qt's rich text understands; a browser shows it the same way, only rounder.

What models and people write is untrusted: Markdown is rendered with raw HTML turned off, so ``<script>`` in a
message is shown as text, never run; links to ``javascript:`` and the like are not made links (markdown-it's own
check), and images are left as their text, since a picture from the web would be fetched every time the file is
opened, telling a server that someone is reading it.
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING

from app import __version__
from app.export.content import Block, Heading, Note, Readable, Table, Text, Verbatim

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

PYGMENTS_STYLE = "default"  # light, like the page, and readable in black and white

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 11pt;
       color: #2b2622; line-height: 1.5; }
h1 { font-size: 18pt; margin: 1.2em 0 0.2em; }
h1.next { page-break-before: always; }
h2 { font-size: 13.5pt; margin: 1.4em 0 0.3em; }
h3 { font-size: 12pt; margin: 1.2em 0 0.3em; }
h4, h5, h6 { font-size: 11pt; }
.detail { font-weight: normal; font-size: 9.5pt; color: #6b625a; }
.note { color: #6b625a; font-size: 9.5pt; margin: 0.2em 0; }
pre, code { font-family: "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace; }
pre { background-color: #f6f1ea; padding: 0.6em 0.8em; white-space: pre-wrap; font-size: 9.5pt; }
code { background-color: #f6f1ea; font-size: 10pt; }
pre code { background-color: transparent; font-size: 9.5pt; }
pre.verbatim { font-family: inherit; font-size: 11pt; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #d9cfc3; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background-color: #f6efe6; }
blockquote { border-left: 3px solid #d9cfc3; margin: 0.6em 0; padding-left: 1em; color: #4a423b; }
.made { color: #6b625a; font-size: 9pt; margin-top: 3em; }
@media print {
  h2, h3 { page-break-after: avoid; }
  pre, table, blockquote { page-break-inside: avoid; }
  a { color: inherit; }
}
"""
SCREEN = """
body { max-width: 52em; margin: 2em auto; padding: 0 1em; background: #fffdf9; }
h1.next { border-top: 1px solid #e4dcd2; padding-top: 1em; margin-top: 2.5em; }
@media print { body { max-width: none; margin: 0; padding: 0; background: #fff; }
               h1.next { border-top: none; padding-top: 0; margin-top: 0; } }
"""


def html_page(readable: Readable, *, paper: bool = False) -> str:
    """The page for a browser, or with ``paper`` for Qt to print or make a PDF of: Qt reads the CSS as a screen
    would, ``@media print`` included, so the screen's tinted background and narrow column are left out instead."""
    body: list[str] = []
    first = True
    for block in readable.blocks:
        if isinstance(block, Heading) and block.level == 1:
            body.append(_heading(block, "" if first else "next"))
            first = False
        else:
            body.append(_block(block))
    title = html.escape(readable.title)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="Hearth {html.escape(__version__)}">'
            f"<title>{title}</title><style>{STYLE}{'' if paper else SCREEN}</style></head>\n<body>\n" + "\n".join(body)
            + f'\n<p class="made">Exported from Hearth {html.escape(__version__)}. Everything in it was written on '
              "this computer.</p>\n</body></html>\n")


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return _heading(block)
    if isinstance(block, Note):
        return f'<p class="note">{html.escape(block.text)}</p>'
    if isinstance(block, Text):
        return f'<div class="text">{markdown_html(block.markdown)}</div>'
    if isinstance(block, Verbatim):
        return f'<pre class="verbatim">{html.escape(block.text)}</pre>'
    return _table(block)


def _heading(heading: Heading, css_class: str = "") -> str:
    tag = f"h{min(max(heading.level, 1), 6)}"
    detail = f' <span class="detail">{html.escape(heading.detail)}</span>' if heading.detail else ""
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<{tag}{attribute}>{html.escape(heading.text)}{detail}</{tag}>"


def _table(table: Table) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header) + "</tr>" \
        if table.header else ""
    rows = "".join("<tr>" + "".join(f"<th>{html.escape(cell)}</th>" if table.side_header and i == 0 else
                                     f"<td>{html.escape(cell)}</td>" for i, cell in enumerate(row)) + "</tr>"
                   for row in table.rows)
    return f"<table>{head}{rows}</table>"


def markdown_html(text: str) -> str:
    """Markdown written by a model or a person as safe HTML: CommonMark with tables and strikethrough, code fences
    in a known language highlighted, raw HTML shown as text."""
    rendered: str = parser().render(text)
    return rendered


@functools.cache
def parser() -> MarkdownIt:
    """One parser for the HTML and the Word writer, so both read a message the same way."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight}).enable(["table", "strikethrough"]) \
        .disable("image")
    md.add_render_rule("code_block", lambda tokens, index, _options, _env: _highlight(tokens[index].content, "", ""))
    return md


def _highlight(code: str, language: str, _attributes: str) -> str:
    """A code block, coloured with inline styles (a file that is mailed keeps them) when Pygments knows its
    language, and without the blank line its last line break would make on paper."""
    from pygments import highlight
    from pygments.formatters.html import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    code = code.rstrip("\n")
    shown = html.escape(code)
    if language:
        try:
            lexer = get_lexer_by_name(language)
        except ClassNotFound:
            pass
        else:
            formatter = HtmlFormatter(nowrap=True, noclasses=True, style=PYGMENTS_STYLE)
            shown = highlight(code, lexer, formatter).rstrip("\n")
    language_class = f' class="language-{html.escape(language)}"' if language else ""
    return f'<pre class="code"><code{language_class}>{shown}</code></pre>\n'
