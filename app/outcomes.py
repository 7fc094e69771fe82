"""How work ends, in the words the history database keeps (so these are ``StrEnum``s: a member is stored and read
back as its value, and compares equal to it).

An answer ends with a ``FinishReason`` (the engine's four, plus the two only the app can see). A task run, a
comparison and each model of a comparison go through the ``RunStatus``es; a task's result is ``DONE`` or
``CANCELLED``.
"""

from __future__ import annotations

from enum import StrEnum


class FinishReason(StrEnum):
    STOP = "stop"  # the model ended its answer (or wrote a stop string)
    LENGTH = "length"  # the answer reached its length limit
    CANCELLED = "cancelled"  # stopped by the person
    INTERRUPTED = "interrupted"  # the app closed or the engine stopped mid-answer
    ERROR = "error"  # the engine failed
    DEGENERATE = "degenerate"  # stopped because it had stopped saying anything (app.degenerate): said with a sentence


# The answers that can be continued from their end: cut short by Stop, by the app or the engine going away, or by
# their length limit.
CONTINUABLE = (FinishReason.CANCELLED, FinishReason.INTERRUPTED, FinishReason.LENGTH)


class RunStatus(StrEnum):
    WAITING = "waiting"  # a comparison's model before its turn
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # Hearth closed (or crashed) during the run: found at the next start


FINISHED = (RunStatus.DONE, RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.INTERRUPTED)
