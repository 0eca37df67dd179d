"""What the core reports through the injected, non-blocking `notify(event)`.

The core never formats text for people and never imports the chat layer; the notifier
decides what deserves the phone and `handlers/` decide how it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    account: str  # "binance:master", or "" for the whole bot
    at: float  # epoch seconds

    @property
    def emergency(self) -> bool:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeOpened(Event):
    symbol: str
    amount: float
    price: float
    cost: float
    reason: str
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeClosed(Event):
    symbol: str
    amount: float
    price: float
    pnl: float
    pnl_pct: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Event):
    symbol: str
    side: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAdopted(Event):
    """An order carrying this account's client id tag that the book did not follow (its
    placement was answered "not placed", or its answer lost and its record dropped), found at
    the exchange and taken back as the bot's (trading/reconcile_adopt.py)."""

    symbol: str
    side: str
    purpose: str  # what its client id says it was sent for ("" : a purpose the bot lost)
    amount: float
    filled: float
    status: str
    cancelling: bool  # taken back only to be cancelled; else the bot manages it as its own


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRaised(Event):
    kind: str  # Fault.kind
    call: str
    message: str
    # Never an emergency itself: a Fatal fault reaches the trader, whose one Emergency says
    # what it does about it (one fault, one page).


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged(Event):
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EntriesHeld(Event):
    """New entries stop (held) or start again: an answer nobody recognised, or its end."""

    reason: str
    held: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolBanned(Event):
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EquityReport(Event):
    """Sent every cycle; the notifier's policy decides whether the move is worth a message."""

    equity: float
    exposure: float  # fraction of equity in open positions
    quote: str
    positions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Emergency(Event):
    """Dead switch, failsafe, sync escalation, kill not flat, watchdog alarm. `key` identifies
    the condition so repeats coalesce and a later EmergencyCleared can close it."""

    key: str
    message: str

    @property
    def emergency(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class EmergencyCleared(Event):
    key: str
    message: str


Notify = Callable[[Event], None]


def discard(event: Event) -> None:
    """A notify that drops everything (for tools that do not report)."""


class Replying:
    """The events a command's own reply tells, while that command runs: their notifications
    would say it a second time. Set by a handler around the operation (`replying`), read by
    the notifier through `answered`; child tasks see it only while the command runs, so a
    flattening it started, or anything after, is notified as usual."""

    def __init__(
        self, kinds: tuple[type[Event], ...], symbol: str | None, reasons: tuple[str, ...]
    ) -> None:
        self.kinds = kinds
        self.symbol = symbol
        self.reasons = reasons
        self.active = True

    def covers(self, event: Event) -> bool:
        if not self.active or event.emergency or not isinstance(event, self.kinds):
            return False
        if self.symbol is not None and getattr(event, "symbol", None) != self.symbol:
            return False
        return not self.reasons or getattr(event, "reason", None) in self.reasons


_replying: ContextVar[Replying | None] = ContextVar("replying", default=None)


@contextmanager
def replying(
    *kinds: type[Event], symbol: str | None = None, reasons: tuple[str, ...] = ()
) -> Iterator[None]:
    """Within this block, events of `kinds` (about `symbol` and for one of `reasons`, if
    given) are the command's own reply's to tell; emergencies never are. A stop-loss that a
    /sell's sync finds filled is not the /sell's: its reason differs, so it is notified."""
    reply = Replying(kinds, symbol, reasons)
    token = _replying.set(reply)
    try:
        yield
    finally:
        reply.active = False
        _replying.reset(token)


def answered(event: Event) -> bool:
    """Is `event` told by the reply of the command now running (not to be notified again)?"""
    reply = _replying.get()
    return reply is not None and reply.covers(event)
