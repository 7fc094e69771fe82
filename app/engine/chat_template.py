"""A model file's chat template, compiled and rendered under a budget of work, length and memory.

A GGUF file carries its chat template as Jinja source, and llama-cpp-python renders it in Jinja's
``ImmutableSandboxedEnvironment``. The sandbox keeps a template away from Python's internals (it was never
escaped in the part 10 probes), but not from cost: ``{% for %}`` loops inside loops ran for hours, a macro that
calls itself twice per level never ended, ``'x' * 10**10`` allocated ten gigabytes, and Jinja even folds constant
expressions like that one while *compiling*, so the model's load itself could eat the machine. Each ended in a
hang or a traceback in sandbox jargon. Here the same template runs in the same sandbox with:

- **an operation limit and a deadline**: a trace function counts every line the template's code (and anything it
  calls in Python) runs, and stops it past ``MAX_OPERATIONS`` or ``DEADLINE_S``. Counting, not a timer, so the
  limit is the same on a fast and a slow computer and a test can rely on it;
- **a length limit**: no value and no output may exceed the longest prompt the conversation could make
  (``OVERHEAD_CHARS`` beyond twice its messages' text): ``*``, ``+``, ``%``, ``~``, ``join`` and ``replace`` are
  checked *before* they build their result, and so is any integer handed to a filter or function (a width, a
  count), which is how ``center``, ``indent``, ``format`` and ``lipsum`` would otherwise build huge strings;
- **no constant folding** (``optimized=False``), so nothing in the template runs while it compiles, and the
  compile itself runs under the same budget.

Whatever still slips through (an allocation too big for the engine's memory cap, ``app/engine/memory.py``) ends as
``MemoryError``, which is caught the same way. Every failure becomes one ``ChatTemplateError`` sentence that says
the template is broken and that ChatML can be used instead; the details go to the log.

A hand-written guard rather than a library: Jinja has no resource limits of its own, and the alternatives
(rendering in a separate process per message, a different template engine) would cost every message a process
start or change how correct templates render.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from jinja2 import BaseLoader, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.errors import CHATML_OFFER, ChatTemplateError

log = logging.getLogger(__name__)

# Operations are function calls anywhere and lines of the template's own code. Real templates take 30-150 per
# message (a ChatML-style one with this module's checks ~120), so the allowance grows with the conversation; the
# base is a few tenths of a second of a template that loops. Limits, not measurements: past them the template is
# looping, not formatting.
MAX_OPERATIONS = 2_000_000
OPERATIONS_PER_MESSAGE = 2_000
# For the few operations that take long without running lines (sorting a huge list, say); far beyond what
# any real template takes (a few milliseconds).
DEADLINE_S = 5.0
# What a template may add to the messages' text: the longest real templates (tool instructions, dates) add a
# few kilobytes; a megabyte of characters is far beyond any of them and still harmless to tokenize.
OVERHEAD_CHARS = 1 << 20
_CHECK_CLOCK_EVERY = 1024
_TEMPLATE_FILE = "<template>"  # the file name of code Jinja compiles from a string

BROKEN = "This model's chat template is broken: {what}. " + CHATML_OFFER
REFUSED = "This model's chat template refused this conversation (“{said}”). " + CHATML_OFFER
LOOPS = "it does not finish"
TOO_LONG = "it builds a prompt far too long"
TOO_MUCH_MEMORY = "it needs more memory than a prompt ever should"
RECURSES = "it calls itself without end"
MISTAKE = "it has a mistake in it"
_QUOTED_REFUSAL = 200  # characters of the template's own message kept in the sentence


class _OverBudget(BaseException):
    """Raised inside the template's code: a ``BaseException``, so no ``except Exception`` in Jinja's runtime or
    the template's helpers can swallow it and carry on untraced (a trace function that raises is removed)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _Refused(Exception):
    """The template called ``raise_exception``: its author's own words about what it does not accept."""


@dataclass
class _Budget:
    max_chars: int
    max_operations: int = MAX_OPERATIONS
    deadline_s: float = DEADLINE_S

    def check_length(self, length: int) -> None:
        if length > self.max_chars:
            raise _OverBudget(TOO_LONG)

    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """An integer beyond the longest prompt is a width or a count no real template passes."""
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > self.max_chars:
                raise _OverBudget(TOO_LONG)


def _predicted_length(operator: str, left: Any, right: Any) -> int | None:
    """The length of ``left <operator> right`` before it is built, where it could be huge."""
    if operator == "*":
        if isinstance(left, int) and not isinstance(left, bool):
            left, right = right, left
        if isinstance(left, str | list | tuple) and isinstance(right, int):
            return len(left) * max(right, 0)
    if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        return len(left) + len(right)
    return None


def _power_too_large(left: Any, right: Any) -> bool:
    """``10 ** 10 ** 9`` takes minutes and gigabytes in one C call: anything past 64k bits is refused."""
    if not isinstance(left, int) or not isinstance(right, int) or right <= 0:
        return False
    return abs(left) > 1 and right * abs(left).bit_length() > 1 << 16


def _replaced_length(text: str, old: str, new: str, count: int = -1) -> int:
    found = text.count(old) if old else len(text) + 1
    if count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d*)(?:\.(\d+))?")
_NUMBER = re.compile(r"\d+")


def _widest_field(text: str, *, braces: bool) -> int:
    """The largest width or precision in a ``%`` (or, with ``braces``, ``str.format``) format string: a
    ``{:>1000000000}`` builds a gigabyte from one character."""
    numbers: list[str] = []
    if braces:
        with contextlib.suppress(ValueError):  # a malformed format fails on its own when used
            for _literal, _field, spec, _conversion in string.Formatter().parse(text):
                numbers += _NUMBER.findall(spec or "")
    else:
        for match in _PERCENT_SPEC.finditer(text):
            numbers += [group for group in match.groups() if group]
    widest = 0
    for number in numbers:
        if len(number) > 18:
            return sys.maxsize
        widest = max(widest, int(number))
    return widest


def _joined_length(separator: str, items: Any) -> int | None:
    if not isinstance(items, list | tuple):
        return None
    return sum(len(item) if isinstance(item, str) else 32 for item in items) + len(separator) * max(len(items) - 1, 0)


class _BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox llama-cpp-python uses, with its operators, calls, filters and globals checked against the
    budget of the render in progress (one at a time: the engine worker formats on its main thread)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.budget = _Budget(max_chars=OVERHEAD_CHARS)
        self.filters = {name: self._guarded(function, name) for name, function in self.filters.items()}
        self.globals = {name: self._guarded(value, name) if callable(value) else value
                        for name, value in self.globals.items()}

    def _guarded(self, function: Callable[..., Any], name: str) -> Callable[..., Any]:
        passes_context = hasattr(function, "jinja_pass_arg")  # its first argument is Jinja's, not the template's

        @functools.wraps(function)  # keeps Jinja's pass_context / pass_environment marks
        def guarded(*args: Any, **kwargs: Any) -> Any:
            values = args[1:] if passes_context else args
            self.budget.check_arguments(values, kwargs)
            if name == "replace" and len(values) >= 3 and all(isinstance(v, str) for v in values[:3]):
                count = values[3] if len(values) > 3 else kwargs.get("count")
                self.budget.check_length(_replaced_length(values[0], values[1], values[2],
                                                          count if isinstance(count, int) else -1))
            elif name == "format" and values and isinstance(values[0], str):
                self.budget.check_length(_widest_field(values[0], braces=False))
            elif name == "join" and values:
                separator = values[1] if len(values) > 1 else kwargs.get("d", "")
                length = _joined_length(str(separator), values[0])
                if length is not None:
                    self.budget.check_length(length)
            return function(*args, **kwargs)

        return guarded

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        length = _predicted_length(operator, left, right)
        if length is not None:
            self.budget.check_length(length)
        if operator == "**" and _power_too_large(left, right):
            raise _OverBudget(TOO_LONG)
        if operator == "%" and isinstance(left, str):
            self.budget.check_arguments(right if isinstance(right, tuple) else (right,), {})
            self.budget.check_length(_widest_field(left, braces=False))
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        self.budget.check_length(_widest_field(value.__self__, braces=True))
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # Jinja's own signature
        __self.budget.check_arguments(args, kwargs)
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
                count = args[2] if len(args) > 2 and isinstance(args[2], int) else -1
                __self.budget.check_length(_replaced_length(owner, args[0], args[1], count))
            elif name == "join" and args:
                length = _joined_length(owner, args[0])
                if length is not None:
                    __self.budget.check_length(length)
        return super().call(__context, __obj, *args, **kwargs)


class BudgetedTemplate:
    """One chat template, compiled once (under the budget) and rendered as many times as messages are sent.

    ``extensions`` and ``filters`` are those of the renderer it stands in for (llama-cpp-python's ``{% generation
    %}`` tag and its ``tojson``), so a correct template renders exactly as it would there.
    """

    def __init__(self, source: str, *, extensions: Sequence[type[Extension] | str] = (),
                 filters: Mapping[str, Callable[..., Any]] | None = None,
                 max_operations: int = MAX_OPERATIONS, deadline_s: float = DEADLINE_S) -> None:
        self.max_operations, self.deadline_s = max_operations, deadline_s
        self.problem: str | None = None  # why it does not compile, for people
        self._template: Any = None
        environment = _BudgetedEnvironment(loader=BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                                           extensions=list(extensions), optimized=False)
        for name, function in (filters or {}).items():
            environment.filters[name] = environment._guarded(function, name)
        self.environment = environment
        try:
            with self._budget(OVERHEAD_CHARS + 2 * len(source)):
                template = environment.from_string(source)
        except (Exception, _OverBudget) as error:  # every way a template fails becomes its sentence
            self.problem = str(_sentence(error))
            log.warning("the model's chat template does not compile: %s", _detail(error))
        else:
            _guard_concatenation(template)
            self._template = template

    def render(self, **context: Any) -> str:
        """The prompt for ``context`` (``messages`` and the rest); raises ``ChatTemplateError``."""
        if self.problem is not None:
            raise ChatTemplateError(self.problem)
        text = sum(len(str(m.get("content") or "")) for m in context.get("messages") or () if isinstance(m, Mapping))
        limit = OVERHEAD_CHARS + 2 * text

        def refuse(message: object) -> None:
            raise _Refused(str(message))

        context["raise_exception"] = refuse
        pieces: list[str] = []
        try:
            with self._budget(limit, len(context.get("messages") or ())):
                written = 0
                for piece in self._template.generate(**context):
                    written += len(piece)
                    if written > limit:
                        raise _OverBudget(TOO_LONG)
                    pieces.append(piece)
                return "".join(pieces)
        except (Exception, _OverBudget) as error:
            pieces.clear()
            problem = _sentence(error)
            log.warning("the model's chat template failed: %s", _detail(error))
        raise problem

    @contextlib.contextmanager
    def _budget(self, max_chars: int, messages: int = 0) -> Iterator[None]:
        """Count every function call run in this thread until the block ends, and every line of the template's own
        code, against the limits (lines of other code are not traced: that costs ten times the render)."""
        budget = self.environment.budget = _Budget(max_chars, self.max_operations, self.deadline_s)
        deadline = time.monotonic() + budget.deadline_s
        remaining = budget.max_operations + OPERATIONS_PER_MESSAGE * messages
        clock = _CHECK_CLOCK_EVERY

        def on_line(_frame: FrameType, _event: str, _arg: Any) -> Any:
            nonlocal remaining, clock
            remaining -= 1
            clock -= 1
            if remaining < 0:
                raise _OverBudget(LOOPS)
            if clock <= 0:
                clock = _CHECK_CLOCK_EVERY
                if time.monotonic() > deadline:
                    raise _OverBudget(LOOPS)
            return on_line

        def on_call(frame: FrameType, event: str, arg: Any) -> Any:
            on_line(frame, event, arg)
            return on_line if frame.f_code.co_filename == _TEMPLATE_FILE else None

        previous = sys.gettrace()
        sys.settrace(on_call)
        try:
            yield
        finally:
            sys.settrace(previous)


def _guard_concatenation(template: Any) -> None:
    """``~`` compiles to a call of ``str_join`` looked up in the template module's namespace; checking its
    length there is the one way to reach it without changing Jinja's code generator."""
    namespace = getattr(template.root_render_func, "__globals__", None)
    if not isinstance(namespace, dict) or "str_join" not in namespace:
        return
    environment = namespace.get("environment")

    def str_join(seq: Any) -> str:
        parts = [str(value) for value in seq]
        if isinstance(environment, _BudgetedEnvironment):
            environment.budget.check_length(sum(map(len, parts)))
        return "".join(parts)

    namespace["str_join"] = str_join


def _sentence(error: BaseException) -> ChatTemplateError:
    if isinstance(error, _Refused):
        said = " ".join(str(error).split())
        if len(said) > _QUOTED_REFUSAL:
            said = said[:_QUOTED_REFUSAL - 1].rstrip() + "…"
        return ChatTemplateError(REFUSED.format(said=said))
    if isinstance(error, _OverBudget):
        what = error.what
    elif isinstance(error, MemoryError):
        what = TOO_MUCH_MEMORY
    elif isinstance(error, RecursionError):
        what = RECURSES
    elif isinstance(error, OverflowError):
        what = TOO_LONG  # the sandbox's own "range too big"
    else:
        what = MISTAKE
    return ChatTemplateError(BROKEN.format(what=what))


def _detail(error: BaseException) -> str:
    if isinstance(error, TemplateSyntaxError):
        return f"{error.message} (line {error.lineno})"
    text = str(error)
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
