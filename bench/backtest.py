"""How fast the backtest replays: recorded 5m and 1h candles for many markets through the real
engine (trading/backtest.py), against a plain loop that only feeds the same candles to the
strategy (the engine's overhead is the ratio).

The data is the synthetic market's history written to disk as a download leaves it
(sim/recording.py), then read back as the backtest reads it; recording it is not timed.

    python bench/backtest.py [--days 30] [--markets 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

# Runnable as `python bench/backtest.py` from a checkout: the project is not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.recording import record_synthetic
from trading.backtest import Market, cycle_step, run_backtest, window
from trading.replay_clock import ReplayClock
from trading.settings import TradingSettings
from trading.strategies.trend import TrendStrategy
from trading.venues.market_files import load_folder
from trading.venues.recorded import RecordedFeed, Recording

END = 1_699_920_000.0


async def plain_loop(candles: Recording, strategy: TrendStrategy, start: float, end: float,
                     step: float) -> int:  # fmt: skip
    """Every cycle, every market: the strategy's candles and its entry signal, nothing else."""
    clock = ReplayClock(start)
    feed = RecordedFeed(candles, clock=clock)
    symbols = sorted(candles)
    signals = 0
    at = start
    while at <= end:
        clock.advance_to(at)
        for symbol in symbols:
            series = {tf: await feed.fetch_ohlcv(symbol, tf, strategy.candle_limit)
                      for tf in strategy.timeframes}  # fmt: skip
            signals += strategy.entry(symbol, series) is not None
        at += step
    return signals


async def bench(days: float, markets: int, seed: int) -> None:
    strategy = TrendStrategy()
    settings = TradingSettings()
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        await record_synthetic(Path(folder), days=days + 3, end=END, markets=markets, seed=seed)
        recorded = time.perf_counter() - began
        began = time.perf_counter()
        candles = load_folder(Path(folder), quote=settings.quote).candles
        loaded = time.perf_counter() - began
    step = cycle_step(candles, settings)
    start, end = window(candles, step, days=days)
    replayed = sum(
        1 for by_tf in candles.values() for cs in by_tf.values() for c in cs if start <= c.ts < end
    )
    began = time.perf_counter()
    result = await run_backtest(
        Market(candles), strategy=strategy, settings=settings, start=start, end=end
    )
    engine = time.perf_counter() - began
    began = time.perf_counter()
    signals = await plain_loop(candles, strategy, start, end, step)
    plain = time.perf_counter() - began
    simulated_days = (end - start) / 86_400.0
    print(
        f"{len(candles)} markets, {simulated_days:.0f} days, a cycle every {step / 60:g} min "
        f"({result.cycles} cycles), {replayed:,} candles (5m and 1h) in the window"
    )
    print(f"recording the data (not timed below): {recorded:.1f} s, loading it {loaded:.1f} s")
    print(
        f"engine:     {engine:6.1f} s  {replayed / engine:9,.0f} candles/s  "
        f"{simulated_days / engine:6.2f} simulated days per second  "
        f"({len(result.trades)} trades)"
    )
    print(
        f"plain loop: {plain:6.1f} s  {replayed / plain:9,.0f} candles/s  "
        f"{simulated_days / plain:6.2f} simulated days per second  ({signals} signals)"
    )
    print(
        f"engine / plain loop: {engine / plain:.2f}x; goal {days:g} days x {markets} markets "
        f"<= 60 s: {'met' if engine <= 60 else 'NOT met'} ({engine:.1f} s)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--markets", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args.days, args.markets, args.seed))


if __name__ == "__main__":
    main()
