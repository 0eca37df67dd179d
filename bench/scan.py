"""How much of an exchange a scan sees per minute, and what it costs in requests.

Two ways to look at a 2,000-market exchange under a 10 requests/s limit, both on the paper
exchange behind the Connector (the code the engine runs), on simulated time (FakeClock):

- whole universe (trading/scanner.py): one bulk tickers call screens every market each cycle,
  the strategy's prescreen ranks them, and candles are fetched only for the best candidates the
  per-cycle budget allows; one cycle per minute.
- rotation (the seed bots' approach): every 8 s, the next 5 markets of the list, one candle
  request each.

    python bench/scan.py [--markets 2000] [--minutes 30] [--rate-limit 10] [--burst 10]
                         [--budget 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Runnable as `python bench/scan.py` from a checkout: the project is not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.clock import FakeClock
from trading.connector import Connector
from trading.errors import Recoverable
from trading.scanner import Scanner
from trading.strategies import load_strategy
from trading.venues.paper import PaperExchange

QUOTE = "USDT"
MIN_QUOTE_VOLUME = 100_000.0
ROTATION_BATCH = 5
ROTATION_INTERVAL = 8.0


@dataclass
class Outcome:
    """What one approach achieved over the run."""

    minutes: float
    screened: int = 0  # market looks: a ticker screened, or a candle series read (rotation)
    deep: int = 0  # markets whose candles were read
    requests: int = 0
    rate_limited: int = 0
    first_full_pass_min: float | None = None  # minutes until every market was seen once
    universe: int = 0  # markets the approach tries to cover
    wall: float = 0.0

    def per_minute(self, value: float) -> float:
        return value / self.minutes


async def exchange(args: argparse.Namespace, clock: FakeClock) -> tuple[PaperExchange, Connector]:
    paper = PaperExchange(
        clock=clock, markets=args.markets, seed=args.seed, rate_limit=args.rate_limit,
        burst=args.burst,
    )  # fmt: skip
    connector = Connector(paper, clock=clock, max_budget=args.budget)
    await connector.load_markets()
    paper.calls.clear()
    return paper, connector


def finish(outcome: Outcome, paper: PaperExchange, connector: Connector, t0: float) -> Outcome:
    outcome.requests = sum(paper.calls.values())
    outcome.rate_limited = connector.health.faults_by_kind.get("rate_limited", 0)
    outcome.wall = time.perf_counter() - t0
    return outcome


async def whole_universe(args: argparse.Namespace) -> Outcome:
    clock = FakeClock()
    paper, connector = await exchange(args, clock)
    strategy = load_strategy("trend")
    scanner = Scanner(connector, strategy, quote=QUOTE, min_quote_volume=MIN_QUOTE_VOLUME)
    outcome = Outcome(minutes=args.minutes)
    t0 = time.perf_counter()
    start = clock.monotonic()
    for minute in range(args.minutes):
        due = start + 60.0 * minute
        clock.advance(due - clock.monotonic())
        try:
            result = await scanner.scan(exclude=set(), budget=connector.budget())
        except Recoverable:
            continue  # the engine skips the rest of such a cycle; so does the benchmark
        outcome.screened += result.screened
        outcome.universe = result.universe
        if outcome.first_full_pass_min is None and result.screened == result.universe:
            outcome.first_full_pass_min = minute + 1
    outcome.deep = paper.calls["fetch_ohlcv"] // len(strategy.timeframes)
    return finish(outcome, paper, connector, t0)


async def rotation(args: argparse.Namespace) -> Outcome:
    clock = FakeClock()
    paper, connector = await exchange(args, clock)
    universe = sorted(s for s, m in connector.markets.items() if m.active and m.quote == QUOTE)
    outcome = Outcome(minutes=args.minutes, universe=len(universe))
    t0 = time.perf_counter()
    start = clock.monotonic()
    seen: set[str] = set()
    cycles = int(args.minutes * 60 / ROTATION_INTERVAL)
    for cycle in range(cycles):
        clock.advance(start + cycle * ROTATION_INTERVAL - clock.monotonic())
        first = cycle * ROTATION_BATCH
        for i in range(first, first + ROTATION_BATCH):
            symbol = universe[i % len(universe)]
            try:
                await connector.candles(symbol, "5m", 50)
            except Recoverable:
                continue
            outcome.screened += 1
            outcome.deep += 1
            seen.add(symbol)
        if outcome.first_full_pass_min is None and len(seen) == len(universe):
            outcome.first_full_pass_min = (cycle + 1) * ROTATION_INTERVAL / 60
    return finish(outcome, paper, connector, t0)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "never" if value is None else f"{value:{spec}}{unit}"


def report(args: argparse.Namespace, bulk: Outcome, rot: Outcome) -> str:
    pass_rot = rot.first_full_pass_min
    if pass_rot is None:  # extrapolate from the rate, as the run was too short to finish
        pass_rot_text = f"~{rot.universe / rot.per_minute(rot.screened):.0f} min (est.)"
    else:
        pass_rot_text = _fmt(pass_rot, ".1f", " min")
    rows = [
        ("markets screened per minute", bulk.per_minute(bulk.screened),
         rot.per_minute(rot.screened), ",.1f"),
        ("markets with candles per minute", bulk.per_minute(bulk.deep),
         rot.per_minute(rot.deep), ",.1f"),
        ("requests per minute", bulk.per_minute(bulk.requests), rot.per_minute(rot.requests),
         ",.1f"),
        ("requests per screened market", bulk.requests / max(1, bulk.screened),
         rot.requests / max(1, rot.screened), ".4f"),
        ("rate-limit faults", bulk.rate_limited, rot.rate_limited, "d"),
    ]  # fmt: skip
    out = [
        f"scan benchmark: {args.markets} markets, {args.rate_limit:g} requests/s "
        f"(burst {args.burst}), per-cycle budget {args.budget}, {args.minutes} simulated minutes",
        f"universe: {rot.universe:,} active {QUOTE} markets, {bulk.universe:,} of them over "
        f"{MIN_QUOTE_VOLUME:,.0f} {QUOTE} 24 h volume (the rest are read in the bulk call and "
        "filtered out)",
        f"{'':34}{'whole universe':>16}{'rotation 5/8s':>16}{'whole/rot':>10}",
    ]
    for label, a, b, spec in rows:
        ratio = f"{a / b:.3g}x" if b else "-"
        out.append(f"{label:34}{a:>16{spec}}{b:>16{spec}}{ratio:>10}")
    out.append(
        f"{'every market seen once after':34}{_fmt(bulk.first_full_pass_min, '.0f', ' min'):>16}"
        f"{pass_rot_text:>16}"
    )
    out.append(f"{'wall time':34}{bulk.wall:>15.2f}s{rot.wall:>15.2f}s")
    return "\n".join(out)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--markets", type=int, default=2000)
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--rate-limit", type=float, default=10.0, help="requests per second")
    p.add_argument("--burst", type=int, default=10, help="token bucket size")
    p.add_argument("--budget", type=int, default=10, help="requests per whole-universe cycle")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    bulk = await whole_universe(args)
    rot = await rotation(args)
    print(report(args, bulk, rot))


if __name__ == "__main__":
    asyncio.run(main())
