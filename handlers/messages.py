"""How each event reads on the phone: Telegram HTML, every value escaped.

Every tag opens and closes on the same line, so a long text can be split on any line boundary
(chatbot/senders.py relies on it). Nothing here imports telegram; the console and the pagers
turn the same HTML into plain text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from handlers.format import money, num, percent, signed
from handlers.reply import esc
from trading.events import (
    Emergency,
    EmergencyCleared,
    EntriesHeld,
    EquityReport,
    Event,
    FaultRaised,
    OrderAdopted,
    OrderRejected,
    StateChanged,
    SymbolBanned,
    TradeClosed,
    TradeOpened,
)


def who(account: str) -> str:
    return esc(account or "bot")


def _opened(ev: TradeOpened) -> str:
    levels = []
    if ev.stop_loss is not None:
        levels.append(f"stop {num(ev.stop_loss)}")
    if ev.take_profit is not None:
        levels.append(f"target {num(ev.take_profit)}")
    shown = f" · {' · '.join(levels)}" if levels else ""
    return (
        f"🟢 <b>Bought</b> {num(ev.amount)} {esc(ev.symbol)} @ {num(ev.price)}"
        f" = {money(ev.cost)}{shown} · {who(ev.account)}\n<i>{esc(ev.reason)}</i>"
    )


def _closed(ev: TradeClosed) -> str:
    icon = "✅" if ev.pnl >= 0 else "🔻"
    return (
        f"{icon} <b>Sold</b> {num(ev.amount)} {esc(ev.symbol)} @ {num(ev.price)}"
        f" · PnL {signed(ev.pnl)} ({percent(ev.pnl_pct / 100, sign=True)}) · {who(ev.account)}"
        f"\n<i>{esc(ev.reason)}</i>"
    )


def _rejected(ev: OrderRejected) -> str:
    return (
        f"⛔ Order refused: {esc(ev.side)} {esc(ev.symbol)} · {who(ev.account)}\n{esc(ev.reason)}"
    )


def _adopted(ev: OrderAdopted) -> str:
    what = f"{esc(ev.side)} {num(ev.filled)}/{num(ev.amount)} {esc(ev.symbol)}"
    why = f" ({esc(ev.purpose)})" if ev.purpose else ""
    then = "being cancelled" if ev.cancelling else "managed as the bot's"
    return (
        f"⚠️ Found an order of ours the exchange executed after refusing it: {what}{why},"
        f" {esc(ev.status)}; {then} · {who(ev.account)}"
    )


def _fault(ev: FaultRaised) -> str:
    if ev.kind == "fatal":
        head = f"🚨 <b>Fatal fault</b> · {who(ev.account)}"
    else:
        head = f"⚠️ {esc(ev.kind)} fault · {who(ev.account)}"
    call = f" in <code>{esc(ev.call)}</code>" if ev.call else ""
    return f"{head}{call}\n{esc(ev.message)}"


def _state(ev: StateChanged) -> str:
    reason = f"\n<i>{esc(ev.reason)}</i>" if ev.reason else ""
    return f"⚙️ {who(ev.account)}: {esc(ev.old)} → <b>{esc(ev.new)}</b>{reason}"


def _held(ev: EntriesHeld) -> str:
    if not ev.held:
        return f"▶️ {who(ev.account)}: entries allowed again"
    return (
        f"⚠️ {who(ev.account)}: <b>no new entries</b>: {esc(ev.reason)}\n"
        "Positions keep their protection. If it persists it becomes a fatal fault."
    )


def _banned(ev: SymbolBanned) -> str:
    return f"🚫 {esc(ev.symbol)} banned on {who(ev.account)}\n<i>{esc(ev.reason)}</i>"


def _equity(ev: EquityReport) -> str:
    return (
        f"💰 {who(ev.account)}: equity {money(ev.equity)} {esc(ev.quote)}, exposure "
        f"{percent(ev.exposure)}, {ev.positions} position{'s' if ev.positions != 1 else ''}"
    )


def _emergency(ev: Emergency) -> str:
    return (
        f"🚨 <b>EMERGENCY</b> · {who(ev.account)}\n{esc(ev.message)}\n"
        f"<code>{esc(ev.key)}</code> · send /ack to stop the repeats"
    )


def _cleared(ev: EmergencyCleared) -> str:
    return f"✅ <b>Cleared</b> · {who(ev.account)}\n{esc(ev.message)}\n<code>{esc(ev.key)}</code>"


def _generic(ev: Event) -> str:
    parts = ", ".join(
        f"{f.name}={esc(getattr(ev, f.name))}"
        for f in fields(ev)
        if f.name not in ("account", "at")
    )
    return f"ℹ️ {esc(type(ev).__name__)} · {who(ev.account)}\n{parts}"


FORMATTERS: dict[type, Callable] = {
    TradeOpened: _opened,
    TradeClosed: _closed,
    OrderRejected: _rejected,
    OrderAdopted: _adopted,
    FaultRaised: _fault,
    StateChanged: _state,
    EntriesHeld: _held,
    SymbolBanned: _banned,
    EquityReport: _equity,
    Emergency: _emergency,
    EmergencyCleared: _cleared,
}


def format_event(event: Event) -> str:
    """The HTML text of one event."""
    return FORMATTERS.get(type(event), _generic)(event)


def format_alarm(text: str, *, count: int, repeat: int, age_seconds: float) -> str:
    """An emergency as sent again: the event's text plus how often it was raised and since when."""
    notes = []
    if repeat:
        notes.append(f"repeat #{repeat}")
    if count > 1:
        notes.append(f"raised {count}×")
    if age_seconds >= 1:
        notes.append(f"first {duration(age_seconds)} ago")
    return f"{text}\n<i>{esc(', '.join(notes))}</i>" if notes else text


def format_dropped(dropped: int, stale: int, since: str = "since the last report") -> str:
    """The one line that tells how much the notifier left out while it could not keep up."""
    parts = []
    if dropped:
        parts.append(f"{dropped:,} notification{'s' if dropped != 1 else ''} dropped (queue full)")
    if stale:
        parts.append(f"{stale:,} skipped as stale")
    return f"⚠️ {' and '.join(parts)} {since}"


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@dataclass(frozen=True, slots=True)
class DayEquity:
    """One account's equity over the summary day: first and last report seen."""

    start: float
    end: float
    quote: str
    exposure: float
    positions: int
    realized: float = 0.0  # PnL of the round trips closed today


SUMMARY_KINDS = (
    ("TradeOpened", "entries"),
    ("TradeClosed", "exits"),
    ("OrderRejected", "refused orders"),
    ("FaultRaised", "faults"),
    ("StateChanged", "state changes"),
    ("SymbolBanned", "bans"),
    ("Emergency", "emergencies"),
)


def format_daily_summary(
    *,
    at: float,
    counts: Mapping[str, int],
    equity: Mapping[str, DayEquity],
    dropped: int = 0,
    stale: int = 0,
    active_emergencies: int = 0,
) -> str:
    """The daily summary: per account equity over the day, then what happened, in counts."""
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    lines = [f"📊 <b>Daily summary</b> · {esc(day)}"]
    for account, eq in sorted(equity.items()):
        change = (eq.end - eq.start) / eq.start if eq.start else 0.0
        lines.append(
            f"{who(account)}: {money(eq.end)} {esc(eq.quote)} ({percent(change, sign=True)} "
            f"today, PnL {signed(eq.end - eq.start)}, realized {signed(eq.realized)}), "
            f"exposure {percent(eq.exposure)}, {eq.positions} open"
        )
    if not equity:
        lines.append("No equity reported today.")
    known = {name for name, _ in SUMMARY_KINDS}
    happened = [f"{counts[k]} {label}" for k, label in SUMMARY_KINDS if counts.get(k)]
    others = sum(v for k, v in counts.items() if k not in known and k != "EquityReport")
    if others:
        happened.append(f"{others} other events")
    lines.append(esc(", ".join(happened)) if happened else "A quiet day: no trades, no faults.")
    if dropped or stale:
        lines.append(esc(format_dropped(dropped, stale, "today")))
    if active_emergencies:
        lines.append(f"🚨 {active_emergencies} emergency condition(s) still open: /ack")
    return "\n".join(lines)
