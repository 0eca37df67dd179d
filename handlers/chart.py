"""/chart: the equity curve of each account as a picture, the numbers in the caption.

The store keeps the latest equity snapshot of every minute. One account is drawn in its quote
currency; several are drawn as percent change from their first point on one shared axis, so a
small account's moves stay visible next to a large one's. `equity_chart()` is usable on its own
(the daily summary can attach the same picture).

/chart must not stall the event loop that /kill, the notifier and the scheduler share: the store
thins each curve in SQL to MAX_POINTS (about one per pixel column), and the pure-Python drawing
runs in a worker thread. The caption's count, min and max still cover every snapshot.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.context import Context
from handlers.format import BadInput, command, money, pick, signed
from handlers.png import Canvas, Color
from handlers.reply import Reply, esc

if TYPE_CHECKING:
    from trading.engine import Trader

DEFAULT_PERIOD = 7 * 86400.0
MAX_POINTS = 600  # per account: the plot is 766 pixels wide
UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
WIDTH, HEIGHT, MARGIN = 800, 400, 16
BACKGROUND: Color = (255, 255, 255)
PLOT: Color = (248, 249, 252)
GRID: Color = (222, 226, 234)
AXIS: Color = (80, 84, 92)
BASELINE: Color = (150, 154, 162)
UP: Color = (22, 163, 74)
DOWN: Color = (220, 38, 38)
PALETTE: tuple[tuple[str, Color], ...] = (
    ("blue", (37, 99, 235)),
    ("orange", (234, 88, 12)),
    ("green", (22, 163, 74)),
    ("purple", (147, 51, 234)),
    ("red", (220, 38, 38)),
    ("teal", (13, 148, 136)),
    ("brown", (146, 64, 14)),
    ("grey", (75, 85, 99)),
)


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


@dataclass(frozen=True)
class Chart:
    png: bytes
    caption: str  # HTML


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
    """The equity curve of every selected account over PERIOD (default 7d)."""
    traders, rest = pick(ctx, args, max_rest=1, usage="/chart [ACCOUNT] [PERIOD]")
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
    now = ctx.clock.time()
    since = 0.0 if period is None else now - period
    series = [_series(ctx, t, since) for t in traders]
    window = "all time" if period is None else f"the last {named}"
    # The drawing is pure Python: in a thread, so the loop keeps serving /kill meanwhile.
    made = await asyncio.to_thread(
        equity_chart, series, title=f"📈 <b>Equity</b> over {esc(window)}"
    )
    if made is None:
        labels = esc(", ".join(t.label for t in traders))
        known = [s for s in series if s.points]
        if known:
            lines = [f"Only one equity point so far over {esc(window)}; no curve yet:"]
            lines.extend(_single(s) for s in known)
            return Reply(text="\n".join(lines))
        return Reply(
            text=(
                f"No equity recorded for {labels} over {esc(window)} yet: "
                "a point is recorded at the end of every completed cycle."
            )
        )
    return Reply(text=made.caption, photo=made.png)


def _series(ctx: Context, trader: Trader, since: float) -> Series:
    # On the loop, not in the thread: the store's connection belongs to the loop's thread, and
    # the query is bounded (an index range, MAX_POINTS rows back to Python).
    curve = ctx.desk.store.equity_curve(trader.label, since, MAX_POINTS)
    return Series(
        trader.label,
        trader.settings.quote,
        tuple((p.at, p.equity) for p in curve.points),
        count=curve.count,
        low=curve.low,
        high=curve.high,
    )


def _single(s: Series) -> str:
    at, equity = s.points[-1]
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return f"{esc(s.label)}: {money(equity)} {esc(s.quote)} at {stamp}"


def equity_chart(series: Sequence[Series], *, title: str = "📈 <b>Equity</b>") -> Chart | None:
    """A PNG of the curves and an HTML caption with first, last, min, max and change per
    account; None when no account has two points at different times to draw."""
    drawn = [s for s in series if len({at for at, _ in s.points}) >= 2]
    if not drawn:
        return None
    relative = len(drawn) > 1
    curves = [_values(s, relative) for s in drawn]
    t0 = min(at for s in drawn for at, _ in s.points)
    t1 = max(at for s in drawn for at, _ in s.points)
    lo = min(v for c in curves for _, v in c)
    hi = max(v for c in curves for _, v in c)
    pad = (hi - lo) * 0.06 or max(abs(hi) * 0.01, 1e-9)
    lo, hi = lo - pad, hi + pad
    canvas = _frame()
    x0, y0, x1, y1 = MARGIN, MARGIN, WIDTH - MARGIN - 1, HEIGHT - MARGIN - 1

    def to_px(at: float, value: float) -> tuple[int, int]:
        x = x0 + round((at - t0) / (t1 - t0) * (x1 - x0))
        y = y1 - round((value - lo) / (hi - lo) * (y1 - y0))
        return x, y

    if relative and lo < 0 < hi:
        canvas.hline(x0, x1, to_px(t0, 0.0)[1], BASELINE)
    names = []
    for i, (s, curve) in enumerate(zip(drawn, curves, strict=True)):
        if relative:
            name, color = PALETTE[i % len(PALETTE)]
            names.append(f"{esc(s.label)} {name}")
        else:
            color = UP if s.points[-1][1] >= s.points[0][1] else DOWN
        canvas.polyline(_columns([to_px(at, v) for at, v in curve]), color, width=2)
    lines = [title]
    if relative:
        lines.append("percent change from each account's first point: " + ", ".join(names))
    lines.extend(_stats(s) for s in series if s.points)
    return Chart(png=canvas.png(), caption="\n".join(lines))


def _values(s: Series, relative: bool) -> list[tuple[float, float]]:
    first = s.points[0][1]
    if not relative or first <= 0:
        return list(s.points)
    return [(at, (v / first - 1.0) * 100.0) for at, v in s.points]


def _frame() -> Canvas:
    canvas = Canvas(WIDTH, HEIGHT, BACKGROUND)
    x0, y0, x1, y1 = MARGIN, MARGIN, WIDTH - MARGIN - 1, HEIGHT - MARGIN - 1
    canvas.fill(x0, y0, x1, y1, PLOT)
    for i in range(1, 5):
        canvas.hline(x0, x1, y0 + (y1 - y0) * i // 5, GRID)
    for i in range(1, 8):
        canvas.vline(x0 + (x1 - x0) * i // 8, y0, y1, GRID)
    canvas.fill(x0 - 1, y0, x0, y1 + 1, AXIS)  # y axis
    canvas.fill(x0 - 1, y1, x1, y1 + 1, AXIS)  # x axis
    return canvas


def _columns(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Thousands of points on a few hundred pixel columns: keep each column's first, lowest,
    highest and last point, which draws the same picture in bounded time."""
    out: list[tuple[int, int]] = []
    column: list[int] = []
    x_now = None
    for x, y in points:
        if x != x_now and column:
            out.extend(_keep(x_now, column))
            column = []
        x_now = x
        column.append(y)
    if column:
        out.extend(_keep(x_now, column))
    return out


def _keep(x, ys: list[int]) -> list[tuple[int, int]]:
    if len(ys) <= 2:
        return [(x, y) for y in ys]
    return [(x, ys[0]), (x, min(ys)), (x, max(ys)), (x, ys[-1])]


def _stats(s: Series) -> str:
    values = [v for _, v in s.points]
    first, last = values[0], values[-1]
    low = min(values) if s.low is None else s.low
    high = max(values) if s.high is None else s.high
    count = len(values) if s.count is None else s.count
    change = last - first
    share = f" ({change / first * 100:+.2f} %)" if first > 0 else ""
    return (
        f"<b>{esc(s.label)}</b>: {money(first)} → {money(last)} {esc(s.quote)}, "
        f"change {signed(change)}{share} · min {money(low)} · max {money(high)}"
        f" · {count} points"
    )
