"""Recorded market data for tests and benchmarks: the synthetic paper market's closed candles
written in the layout of trading/venues/market_files.py, as a download would leave them."""

from __future__ import annotations

from pathlib import Path

from sim.clock import FakeClock
from trading.models import TIMEFRAME_SECONDS, Candle
from trading.venues.market_files import append_candles
from trading.venues.market_sim import MAX_CANDLES, SyntheticFeed


async def record_synthetic(
    folder: Path,
    *,
    days: float,
    end: float,
    markets: int = 10,
    timeframes: tuple[str, ...] = ("5m", "1h"),
    seed: int = 1,
) -> list[str]:
    """Write `days` of closed candles up to `end` for the first `markets` active synthetic
    markets; returns their symbols."""
    start = end - days * 86_400
    symbols: list[str] = []
    for timeframe in timeframes:
        clock = FakeClock(start)
        feed = SyntheticFeed(seed=seed, markets=markets, clock=clock)
        symbols = sorted(s for s, m in (await feed.load_markets()).items() if m.active)
        period = TIMEFRAME_SECONDS[timeframe]
        chunks: dict[str, dict[float, Candle]] = {s: {} for s in symbols}
        at = start - start % period + period * (MAX_CANDLES - 1)
        while True:
            clock.advance_to(min(at, end))
            for symbol in symbols:
                closed = (await feed.fetch_ohlcv(symbol, timeframe, MAX_CANDLES))[:-1]
                chunks[symbol].update(
                    (c.ts, c) for c in closed if c.ts >= start and c.ts + period <= end
                )
            if at >= end:
                break
            at += period * (MAX_CANDLES - 1)
        for symbol, by_time in chunks.items():
            append_candles(folder, symbol, timeframe, [by_time[t] for t in sorted(by_time)])
    return symbols
