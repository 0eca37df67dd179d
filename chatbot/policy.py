"""What deserves the phone. One decision per event, cheap enough to run inside `notify()`,
and the day's tally behind the daily summary.

Defaults aim at a quiet day being a handful of messages: exits ring, entries arrive silently,
rejected orders silently, non-fatal faults only in the daily counts, equity only when it moved
a lot, every state change of a trader, and emergencies always (they have their own lane).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Literal

from chatbot.config import NotifySettings
from handlers.messages import DayEquity, format_daily_summary
from trading.events import (
    EmergencyCleared,
    EntriesHeld,
    EquityReport,
    Event,
    FaultRaised,
    OrderRejected,
    StateChanged,
    SymbolBanned,
    TradeClosed,
    TradeOpened,
)

Decision = Literal["normal", "silent", "emergency"] | None
LEVELS: dict[str, Decision] = {"on": "normal", "silent": "silent", "off": None}


@dataclass(slots=True)
class _Mark:
    equity: float
    exposure: float


class NotifyPolicy:
    """Decides per event: None (count it for the daily summary, send nothing), "normal",
    "silent" (delivered without sound) or "emergency" (the never-dropped lane, with pagers)."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        settings = settings or NotifySettings()
        self.settings = settings
        self._entries = _level(settings.entries, "entries")
        self._exits = _level(settings.exits, "exits")
        self._equity_pct = settings.equity_change_pct
        self._exposure_points = settings.exposure_change_pct
        self._marks: dict[str, _Mark] = {}  # account -> the last equity report that was sent

    def decide(self, event: Event) -> Decision:
        if event.emergency:
            return "emergency"
        match event:
            case TradeOpened():
                return self._entries
            case TradeClosed():
                return self._exits
            case OrderRejected():
                return "silent"
            case FaultRaised():
                # Counted for the daily summary. A fatal one reaches the trader, whose one
                # emergency says what it does about it; the others are retried or skipped.
                return None
            case StateChanged() | SymbolBanned() | EmergencyCleared() | EntriesHeld():
                return "normal"
            case EquityReport():
                return self._equity(event)
        # An event kind this policy does not know yet: tell the human rather than hide it.
        return "normal"

    def _equity(self, event: EquityReport) -> Decision:
        mark = self._marks.get(event.account)
        if mark is None:
            # The first report is the baseline; the daily summary shows it anyway.
            self._marks[event.account] = _Mark(event.equity, event.exposure)
            return None
        if mark.equity:
            moved_pct = abs(event.equity - mark.equity) / abs(mark.equity) * 100.0
        else:
            moved_pct = 0.0 if event.equity == 0 else float("inf")
        moved_points = abs(event.exposure - mark.exposure) * 100.0
        if moved_pct > self._equity_pct or moved_points > self._exposure_points:
            self._marks[event.account] = _Mark(event.equity, event.exposure)
            return "silent"
        return None

    def last_reported(self, account: str) -> tuple[float, float] | None:
        """(equity, exposure) of the last equity report sent for this account, or the baseline."""
        mark = self._marks.get(account)
        return (mark.equity, mark.exposure) if mark else None


def _level(value: str, name: str) -> Decision:
    try:
        return LEVELS[value]
    except KeyError:
        raise ValueError(f"notify {name} must be one of on, silent, off (got {value!r})") from None


class DayLedger:
    """Everything that happened since the last daily summary: events by kind (sent or not),
    each account's first and last equity, what the notifier had to drop."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.equity: dict[str, DayEquity] = {}
        self.dropped = 0
        self.stale = 0

    def count(self, event: Event) -> None:
        self.counts[type(event).__name__] += 1
        if isinstance(event, EquityReport):
            day = self.equity.get(event.account)
            start = day.start if day else event.equity
            realized = day.realized if day else 0.0
            self.equity[event.account] = DayEquity(
                start, event.equity, event.quote, event.exposure, event.positions, realized
            )
        elif isinstance(event, TradeClosed) and event.account in self.equity:
            day = self.equity[event.account]
            self.equity[event.account] = replace(day, realized=day.realized + event.pnl)

    def summary(self, at: float, *, open_emergencies: int = 0) -> str:
        return format_daily_summary(
            at=at,
            counts=self.counts,
            equity=self.equity,
            dropped=self.dropped,
            stale=self.stale,
            active_emergencies=open_emergencies,
        )

    def reset(self) -> None:
        """A new day starts from each account's last equity."""
        self.counts.clear()
        self.dropped = self.stale = 0
        self.equity = {
            a: DayEquity(d.end, d.end, d.quote, d.exposure, d.positions, 0.0)
            for a, d in self.equity.items()
        }
