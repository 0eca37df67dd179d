"""What the chaos soak throws on purpose, and the watch on the bot's logs that tells it from a
real failure.

    ChaosBug        a bug injected on purpose (by the strategy or the venue)
    Crash           the bot's process dying at a point the soak chose
    capturing_logs  every exception the bot logs that is not a ChaosBug is a violation

They stand apart from the referee (sim/chaos/referee.py) because the venue, the actors and the
processes raise them without needing the Monitor that judges the run.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable, Iterator

Violation = Callable[[str, str], None]  # (kind, detail): the Monitor's violation


class ChaosBug(RuntimeError):
    """A bug injected on purpose; any other exception the bot logs is a real one."""


class Crash(BaseException):
    """The bot's process dies here (a crash point, or killed at a random moment): a
    BaseException, so no handler of the bot survives it, as none survives a SIGKILL."""


class LogWatch(logging.Handler):
    """Every exception the bot logs that was not injected on purpose is a violation, and so is
    any exception at all that reached a command handler."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(logging.ERROR)
        self.violation = violation

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        # An injected bug is the dead switch's business, unless it escaped an operation into
        # a command handler: the trader's operations never raise.
        if isinstance(exc, ChaosBug) and not record.name.startswith("handlers"):
            return
        where = "".join(traceback.format_tb(exc.__traceback__)[-2:]).strip().replace("\n", " | ")
        self.violation(
            "unexpected exception logged",
            f"{record.name}: {record.getMessage()}: {type(exc).__name__}: {exc} at {where}",
        )


@contextlib.contextmanager
def capturing_logs(violation: Violation) -> Iterator[None]:
    """Only errors are logged while the soak runs (the rest would be noise, and slow); each
    logged exception is inspected."""
    handler = LogWatch(violation)
    names = ("trading", "handlers", "chatbot")
    levels = {n: logging.getLogger(n).level for n in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger(name).addHandler(handler)
    try:
        yield
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(levels[name])
