"""The pictures of /chart and /chart pnl from a scripted week of trades, and what drawing costs.

    python bench/chart.py [--out docs] [--seed 7] [--repeat 20]

A week of one account on a seeded random price path, one equity snapshot a minute: the bot
enters a market every few hours and leaves it at its stop, its target or after a while, and is
down for four hours on day five (a redeploy that went wrong), which /chart shades instead of
drawing a crash. The trades and snapshots go into a real Store; /chart's handler module draws
them (handlers/plots.py) into OUT/chart.png and OUT/chart-pnl.png, the pictures the README
shows. It prints the first drawing's time (importing matplotlib included) and the median of
REPEAT more, for the equity curve thinned to /chart's 600 points and for 30 daily bars.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers import chart, plots
from trading import ledger
from trading.records import ClosedTrade
from trading.store import Store

ACCOUNT, QUOTE, START = "paper:main", "USDT", 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAYS, STAKE, FEE = 7, 1_000.0, 0.001
DOWN_FROM, DOWN_FOR = 4 * 86400 + 9 * 3600, 4 * 3600  # the bot was not running


def scripted_week(store: Store, seed: int) -> None:
    """Snapshots every minute and the trades of a simple rule on a random walk."""
    rng = random.Random(seed)
    price, cash, held, entry, opened = 100.0, 10_000.0, 0.0, 0.0, 0.0
    for minute in range(DAYS * 1440):
        at = START + minute * 60
        price *= 1 + rng.gauss(0.00002, 0.0015)
        if DOWN_FROM <= at - START < DOWN_FROM + DOWN_FOR:
            continue  # no cycle ran, no snapshot
        if not held and minute % 240 == 0:
            held, entry, opened = STAKE / price, price, at
            cash -= STAKE * (1 + FEE)
        elif held and (reason := _exit(price / entry, at - opened)):
            proceeds = held * price * (1 - FEE)
            fees = STAKE * FEE + held * price * FEE
            store.add_trade(
                ClosedTrade(
                    ACCOUNT,
                    "SOL/USDT",
                    held,
                    entry,
                    price,
                    opened,
                    at,
                    proceeds - STAKE * (1 + FEE),
                    fees,
                    reason,
                )
            )
            cash, held = cash + proceeds, 0.0
        store.add_equity(ACCOUNT, at, cash + held * price, held * price / (cash + held * price))


def _exit(ratio: float, held_for: float) -> str | None:
    """Why the position goes now: its target, its stop, or a day gone by; None: it stays."""
    if ratio >= 1.03:
        return "take-profit"
    if ratio <= 0.98:
        return "stop-loss"
    return "timeout" if held_for > 86400 else None


def timed(draw, repeat: int) -> tuple[float, float, bytes]:
    """The first call's seconds, the median of `repeat` more, and the picture."""
    t0 = time.perf_counter()
    png = draw()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        draw()
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs), png


def _cost(first: float, median: float) -> str:
    return f"first {first * 1000:.0f} ms, then {median * 1000:.0f} ms (median)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    store = Store(":memory:")
    scripted_week(store, args.seed)
    curve = store.equity_curve(ACCOUNT, 0.0, chart.MAX_POINTS)
    marks = []
    for t in store.trades(ACCOUNT):
        marks += [plots.Mark(t.opened_at, exit=False), plots.Mark(t.closed_at, True, t.pnl > 0)]
    line = plots.Line(ACCOUNT, [(p.at, p.equity) for p in curve.points], marks)
    days = ledger.periods(store.trades(ACCOUNT), ledger.Unit.DAY, DAYS, START + DAYS * 86400 - 1)
    bars = [(d.start, d.pnl) for d in reversed(days)]

    title = "Equity over the last 7d"
    first, median, equity = timed(
        lambda: plots.equity_png([line], ylabel=f"equity ({QUOTE})", title=title), args.repeat
    )
    print(f"equity curve, {len(line.points)} points, {len(marks)} marks: {_cost(first, median)}")
    print(f"  {len(equity):,} bytes (the first drawing imports matplotlib)")
    title = f"Daily profit over the last {DAYS} days"
    first, median, pnl = timed(
        lambda: plots.pnl_png(bars, ylabel=f"profit ({QUOTE})", title=title), args.repeat
    )
    print(f"daily bars, {len(bars)} days: {_cost(first, median)}, {len(pnl):,} bytes")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chart.png").write_bytes(equity)
    (args.out / "chart-pnl.png").write_bytes(pnl)
    trades = store.trades(ACCOUNT)
    print(
        f"{len(trades)} trades, realized {sum(t.pnl for t in trades):+,.2f} {QUOTE}; "
        f"wrote {args.out / 'chart.png'} and {args.out / 'chart-pnl.png'}"
    )


if __name__ == "__main__":
    main()
