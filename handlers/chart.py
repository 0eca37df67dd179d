"""/chart: the equity curve of each account as a picture, the numbers in the caption;
/chart pnl: the profit of each UTC day as bars.

The store keeps the latest equity snapshot of every minute. One account is drawn in its quote
currency; several are drawn as percent change from their first point on one shared axis, so a
small account's moves stay visible next to a large one's. Entries and exits of the trades in
the window are marked on the curve; time the bot was not running is shaded (handlers/plots.py).

/chart must not stall the event loop that /kill, the notifier and the scheduler share: the store
thins each curve in SQL to MAX_POINTS, and matplotlib draws in a worker thread. The caption's
count, min and max still cover every snapshot.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers import plots
from handlers.context import Context
from handlers.format import BadInput, command, money, pick, signed
from handlers.reply import Reply, esc
from trading import reports
from trading.ledger import Unit

if TYPE_CHECKING:
    from trading.engine import Trader

DEFAULT_PERIOD = 7 * 86400.0
DEFAULT_DAYS, MAX_DAYS = 30, 365
MAX_POINTS = 600  # per account: about one per pixel column of the plot
UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
USAGE = "/chart [ACCOUNT] [PERIOD] or /chart [ACCOUNT] pnl [DAYS]"


@dataclass(frozen=True)
class Series:
    """One account's equity over time, oldest first. When `points` is a thinned curve, `count`,
    `low` and `high` describe every snapshot it stands for; left None, they are the points'."""

    label: str
    quote: str
    points: tuple[tuple[float, float], ...]  # (epoch, equity)
    count: int | None = None
    low: float | None = None
    high: float | None = None
    marks: tuple[plots.Mark, ...] = ()


def parse_period(text: str) -> float | None:
    """ "24h", "90m", "7d", "2w" -> seconds; "all" -> None (everything)."""
    word = text.strip().lower()
    if word == "all":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([mhdw])", word)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(word)
    return float(match.group(1)) * UNITS[match.group(2)]


@command
async def chart(ctx: Context, args: list[str]) -> Reply:
    """The equity curve of every selected account over PERIOD (default 7d), or daily profit."""
    words = [a.lower() for a in args]
    if "pnl" in words[:2]:
        at = words.index("pnl")
        traders, _ = pick(ctx, args[:at], max_rest=0, usage=USAGE)
        return await _daily(ctx, traders, args[at + 1 :])
    traders, rest = pick(ctx, args, max_rest=1, usage=USAGE)
    period: float | None = DEFAULT_PERIOD
    named = "7d"
    if rest:
        named = rest[0].strip().lower()
        try:
            period = parse_period(rest[0])
        except ValueError:
            raise BadInput(
                f"{esc(rest[0])} is neither an account nor a period such as 24h, 7d or all. "
                f"Known accounts: {esc(', '.join(ctx.desk.labels))}."
            ) from None
    since = 0.0 if period is None else ctx.clock.time() - period
    series = [_series(ctx, t, since) for t in traders]
    window = "all time" if period is None else f"the last {named}"
    drawn = [s for s in series if len({at for at, _ in s.points}) >= 2]
    if not drawn:
        return _no_curve(series, traders, window)
    several = len(drawn) > 1
    lines = [plots.Line(s.label, _values(s, several), s.marks) for s in drawn]
    ylabel = "change from first point (%)" if several else f"equity ({drawn[0].quote})"
    png = await asyncio.to_thread(
        plots.equity_png, lines, ylabel=ylabel, title=f"Equity over {window}"
    )
    caption = [f"📈 <b>Equity</b> over {esc(window)}"]
    if several:
        names = ", ".join(f"{esc(s.label)} {plots.color_name(i)}" for i, s in enumerate(drawn))
        caption.append(f"percent change from each account's first point: {names}")
    caption.extend(_stats(s) for s in series if s.points)
    offline = sum(b - a for s in drawn for a, b in plots.gaps([at for at, _ in s.points]))
    if offline:
        caption.append(f"shaded: the bot was not running ({_duration(offline)})")
    return Reply(text="\n".join(caption), photo=png)


def _series(ctx: Context, trader: Trader, since: float) -> Series:
    # On the loop, not in the thread: the store's connection belongs to the loop's thread, and
    # the queries are bounded (an index range, MAX_POINTS rows back to Python).
    curve = ctx.desk.store.equity_curve(trader.label, since, MAX_POINTS)
    marks = []
    for trade in ctx.desk.store.trades(trader.label, since):
        marks.append(plots.Mark(trade.opened_at, exit=False))
        marks.append(plots.Mark(trade.closed_at, exit=True, won=trade.pnl > 0))
    marks.extend(plots.Mark(p.opened_at, exit=False) for p in trader.info().positions)
    return Series(
        trader.label,
        trader.settings.quote,
        tuple((p.at, p.equity) for p in curve.points),
        count=curve.count,
        low=curve.low,
        high=curve.high,
        marks=tuple(m for m in marks if m.at >= since),
    )


def _no_curve(series: list[Series], traders: list[Trader], window: str) -> Reply:
    known = [s for s in series if s.points]
    if known:
        lines = [f"Only one equity point so far over {esc(window)}; no curve yet:"]
        lines.extend(_single(s) for s in known)
        return Reply(text="\n".join(lines))
    labels = esc(", ".join(t.label for t in traders))
    return Reply(
        text=(
            f"No equity recorded for {labels} over {esc(window)} yet: "
            "a point is recorded at the end of every completed cycle."
        )
    )


def _single(s: Series) -> str:
    at, equity = s.points[-1]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return f"{esc(s.label)}: {money(equity)} {esc(s.quote)} at {stamp}"


def _values(s: Series, relative: bool) -> list[tuple[float, float]]:
    first = s.points[0][1]
    if not relative or first <= 0:
        return list(s.points)
    return [(at, (v / first - 1.0) * 100.0) for at, v in s.points]


def _stats(s: Series) -> str:
    values = [v for _, v in s.points]
    first, last = values[0], values[-1]
    low = min(values) if s.low is None else s.low
    high = max(values) if s.high is None else s.high
    count = len(values) if s.count is None else s.count
    change = last - first
    share = f" ({change / first * 100:+.2f} %)" if first > 0 else ""
    exits = sum(1 for m in s.marks if m.exit)
    return (
        f"<b>{esc(s.label)}</b>: {money(first)} → {money(last)} {esc(s.quote)}, "
        f"change {signed(change)}{share} · min {money(low)} · max {money(high)}"
        f" · {count} points · {exits} trades closed"
    )


def _duration(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d" * bool(days), f"{hours} h" * bool(hours), f"{minutes} min" * bool(minutes)]
    return " ".join(p for p in parts if p) or "under a minute"


# ---- /chart pnl ---------------------------------------------------------------------------------


async def _daily(ctx: Context, traders: list[Trader], args: list[str]) -> Reply:
    if len(args) > 1:
        raise BadInput(f"Too many arguments. Usage: {esc(USAGE)}")
    days = DEFAULT_DAYS
    if args:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_DAYS:
            raise BadInput(f"DAYS is a whole number from 1 to {MAX_DAYS}, not {esc(args[0])}.")
        days = int(args[0])
    groups = reports.periods(ctx.desk, traders, Unit.DAY, days)
    if len(groups) > 1:
        quotes = ", ".join(quote for quote, _ in groups)
        raise BadInput(
            f"These accounts trade in {esc(quotes)}: name one account, as in "
            f"/chart {esc(traders[0].label)} pnl."
        )
    quote, results = groups[0]
    window = f"the last {days} days" if days > 1 else "today"
    count = sum(r.trades for r in results)
    if not count:
        return Reply(text=f"No trade closed over {window} (UTC days): no profit to draw yet.")
    oldest_first = list(reversed(results))
    png = await asyncio.to_thread(
        plots.pnl_png,
        [(r.start, r.pnl) for r in oldest_first],
        ylabel=f"profit ({quote})",
        title=f"Daily profit over {window}",
    )
    best = max(results, key=lambda r: r.pnl)
    worst = min(results, key=lambda r: r.pnl)
    total = math.fsum(r.pnl for r in results)
    caption = [
        f"📊 <b>Daily profit</b> over {esc(window)} (UTC days), after fees",
        f"total {signed(total)} {esc(quote)} from {count} trades",
        f"best day {signed(best.pnl)} ({_day(best.start)}) · "
        f"worst day {signed(worst.pnl)} ({_day(worst.start)})",
    ]
    return Reply(text="\n".join(caption), photo=png)


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))
