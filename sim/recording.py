"""Recorded market data for tests and benchmarks: the synthetic paper market's closed candles
written in the layout of trading/venues/market_files.py, as a download would leave them."""

from __future__ import annotations

from pathlib import Path

from trading.venues.market_files import append_candles
from trading.venues.synthetic_history import synthetic_history


async def record_synthetic(
    folder: Path,
    *,
    days: float,
    end: float,
    markets: int = 10,
    timeframes: tuple[str, ...] = ("5m", "1h"),
    seed: int = 1,
) -> list[str]:
    """Write `days` of closed candles up to `end` for the active synthetic markets among the
    first `markets`; returns their symbols."""
    history = await synthetic_history(
        start=end - days * 86_400, end=end, markets=markets, timeframes=timeframes, seed=seed
    )
    for symbol, by_timeframe in history.items():
        for timeframe, candles in by_timeframe.items():
            append_candles(folder, symbol, timeframe, candles)
    return sorted(history)
