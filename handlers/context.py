"""What a handler can reach: the trading desk, plus the few chat-layer services it reports on
(notifier, scheduler, settings), passed in as plain callables so handlers stay transport-free."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trading.clock import Clock


class NotifierPort(Protocol):
    def ack(self) -> int: ...

    def stats(self) -> Any: ...


@dataclass
class Context:
    desk: Any  # trading.desk.Desk
    clock: Clock
    notifier: NotifierPort | None = None
    settings: Mapping[str, object] = field(default_factory=dict)  # redacted, for /debug
    jobs: Callable[[], list[tuple[str, float | None]]] | None = None  # (job, next run epoch)
    abort: Callable[[], None] | None = None  # ends the process (after the reply is sent)
    versions: Mapping[str, str] = field(default_factory=dict)
    # Drops every confirmation still open, returning their command lines (the dispatcher's).
    drop_confirmations: Callable[[], list[str]] = lambda: []
    logs: Callable[[int], list[str]] | None = None  # the last n log lines, redacted
    recorder: Any = None  # trading.recorder.MarketRecorder, for /record
