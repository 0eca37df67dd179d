"""Pictures of results, drawn with matplotlib: data in, PNG bytes out, nothing else touched.

Pure and blocking, so callers run them in a worker thread (`asyncio.to_thread`): a drawing takes
tens of milliseconds, which the event loop serving /kill must not wait on. matplotlib is
imported on the first drawing, not with this module: start-up and /ping never pay for it.
Only the object-oriented API (a Figure and its Agg canvas) is used, never pyplot, whose global
state belongs to one thread; one lock still draws one picture at a time, since matplotlib does
not promise that its font and text caches are safe across threads.

A bot that was not running leaves no equity snapshots: such a gap is shaded and bridged with a
dotted line, so a restart reads as time off, not as a crash or a drop.
"""

from __future__ import annotations

import bisect
import io
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

WIDTH, HEIGHT, DPI = 10.0, 5.0, 100  # inches and dots per inch: 1000 x 500 pixels
GAP_FACTOR = 5  # a pause this many times the usual spacing of snapshots is a gap...
GAP_MIN_SECONDS = 600.0  # ...and at least this long (one missed cycle is not)
COLORS = (
    ("blue", "#2563eb"),
    ("orange", "#ea580c"),
    ("green", "#16a34a"),
    ("purple", "#9333ea"),
    ("red", "#dc2626"),
    ("teal", "#0d9488"),
    ("brown", "#92400e"),
    ("grey", "#4b5563"),
)
UP, DOWN, OFFLINE = "#16a34a", "#dc2626", "#9ca3af"

_drawing = threading.Lock()


@dataclass(frozen=True)
class Mark:
    """A trade's entry or exit on the curve: `won` colours an exit (None for an entry)."""

    at: float  # epoch
    exit: bool
    won: bool | None = None


@dataclass(frozen=True)
class Line:
    """One account's curve, oldest point first, with its trades' entries and exits."""

    label: str
    points: Sequence[tuple[float, float]]  # (epoch, value)
    marks: Sequence[Mark] = field(default_factory=tuple)


def gaps(times: Sequence[float]) -> list[tuple[float, float]]:
    """The spans with no snapshot (the bot was down or paused its cycles): consecutive points
    further apart than GAP_FACTOR times the median spacing and than GAP_MIN_SECONDS."""
    steps = [b - a for a, b in pairwise(times)]
    if not steps:
        return []
    limit = max(GAP_FACTOR * statistics.median(steps), GAP_MIN_SECONDS)
    return [(a, b) for a, b in pairwise(times) if b - a > limit]


def equity_png(lines: Sequence[Line], *, ylabel: str, title: str = "") -> bytes:
    """The curves over time (UTC) with the value axis named `ylabel`, several in COLORS' order;
    entries as triangles up, exits as triangles down (green for a win, red for a loss), gaps
    shaded and bridged."""
    with _drawing:
        fig, ax = _figure()
        several = len(lines) > 1
        shaded = False
        for i, line in enumerate(lines):
            color = COLORS[i % len(COLORS)][1] if several else _trend(line.points)
            times = [at for at, _ in line.points]
            holes = gaps(times)
            for part in _split(line.points, holes):
                ax.plot(
                    _dates([at for at, _ in part]),
                    [v for _, v in part],
                    color=color,
                    lw=1.6,
                    label=line.label if several and part[0] == line.points[0] else None,
                )
            for a, b in holes:
                ax.axvspan(
                    _date(a),
                    _date(b),
                    color=OFFLINE,
                    alpha=0.18,
                    lw=0,
                    label=None if shaded else "bot not running",
                )
                ax.plot(
                    _dates([a, b]),
                    [_value_at(line.points, a), _value_at(line.points, b)],
                    color=color,
                    lw=1,
                    ls=":",
                )
                shaded = True
            _marks(ax, line)
        if several and ylabel.endswith("%)"):
            ax.axhline(0.0, color=OFFLINE, lw=0.8)
        ax.set_ylabel(ylabel)
        _time_axis(ax)
        ax.yaxis.set_major_formatter(_amounts())
        if title:
            ax.set_title(title, loc="left")
        marked = any(line.marks for line in lines)
        if several or shaded or marked:
            _legend(ax, marked)
        return _png(fig)


def pnl_png(days: Sequence[tuple[float, float]], *, ylabel: str, title: str = "") -> bytes:
    """One bar per (day start epoch, profit): green above zero, red below."""
    with _drawing:
        fig, ax = _figure()
        starts = _dates([at for at, _ in days])
        values = [v for _, v in days]
        ax.bar(
            starts, values, width=0.8, align="edge", color=[UP if v >= 0 else DOWN for v in values]
        )
        ax.axhline(0.0, color="#50545c", lw=0.8)
        ax.set_ylabel(ylabel)
        _time_axis(ax, "day (UTC)")
        ax.yaxis.set_major_formatter(_amounts())
        if title:
            ax.set_title(title, loc="left")
        return _png(fig)


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, color="#dee2ea", lw=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = io.BytesIO()
    FigureCanvasAgg(fig).print_png(out)
    return out.getvalue()


def _time_axis(ax: Any, label: str = "time (UTC)") -> None:
    from matplotlib import dates

    locator = dates.AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel(label)


def _amounts() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:,.2f}".rstrip("0").rstrip("."))


def _legend(ax: Any, marked: bool) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    keys = (("^", "#374151", "entry"), ("v", UP, "exit, won"), ("v", DOWN, "exit, lost"))
    for marker, color, label in keys if marked else ():
        handles.append(Line2D([], [], ls="", marker=marker, color=color))
        labels.append(label)
    ax.legend(handles, labels, loc="upper left", fontsize="small", framealpha=0.85)


def _marks(ax: Any, line: Line) -> None:
    if not line.points:
        return
    first, last = line.points[0][0], line.points[-1][0]
    shown = [m for m in line.marks if first <= m.at <= last]
    for exit_, marker in ((False, "^"), (True, "v")):
        group = [m for m in shown if m.exit is exit_]
        if not group:
            continue
        colors = [(UP if m.won else DOWN) if exit_ else "#374151" for m in group]
        ax.scatter(
            _dates([m.at for m in group]),
            [_value_at(line.points, m.at) for m in group],
            marker=marker,
            c=colors,
            s=64,
            zorder=3,
            edgecolors="white",
            linewidths=0.5,
        )


def _split(points: Sequence[tuple[float, float]], holes: list[tuple[float, float]]) -> list:
    """The runs of points between gaps."""
    parts: list[list[tuple[float, float]]] = [[]]
    starts = {a for a, _ in holes}
    for point in points:
        parts[-1].append(point)
        if point[0] in starts:
            parts.append([])
    return [p for p in parts if p]


def _value_at(points: Sequence[tuple[float, float]], at: float) -> float:
    """The curve's value at `at`, read off linearly between its two neighbouring points."""
    k = bisect.bisect_left([t for t, _ in points], at)
    if k <= 0:
        return points[0][1]
    if k >= len(points):
        return points[-1][1]
    (t0, v0), (t1, v1) = points[k - 1], points[k]
    return v0 if t1 == t0 else v0 + (v1 - v0) * (at - t0) / (t1 - t0)


def _trend(points: Sequence[tuple[float, float]]) -> str:
    return UP if points and points[-1][1] >= points[0][1] else DOWN


def _date(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _dates(times: Sequence[float]) -> list[datetime]:
    return [_date(at) for at in times]


def color_name(index: int) -> str:
    """What the `index`-th of several curves is drawn in, for a caption."""
    return COLORS[index % len(COLORS)][0]
