"""The synthetic paper market's history as recorded candles, so a backtest without data replays
it exactly as it replays a download (trading/venues/recorded.py), and tests and benchmarks can
write it to disk as a download would leave it."""

from __future__ import annotations

from trading.models import TIMEFRAME_SECONDS, Candle
from trading.replay_clock import ReplayClock
from trading.venues.market_sim import MAX_CANDLES, SyntheticFeed


async def synthetic_history(
    *,
    start: float,
    end: float,
    markets: int,
    timeframes: tuple[str, ...] = ("5m", "1h"),
    seed: int = 1,
) -> dict[str, dict[str, list[Candle]]]:
    """The candles of the active synthetic markets closed in [start, end], by symbol and
    timeframe, oldest first; the universe is the one a paper exchange started at `start` sees."""
    history: dict[str, dict[str, list[Candle]]] = {}
    for timeframe in timeframes:
        clock = ReplayClock(start)
        feed = SyntheticFeed(seed=seed, markets=markets, clock=clock)
        symbols = sorted(s for s, m in (await feed.load_markets()).items() if m.active)
        period = TIMEFRAME_SECONDS[timeframe]
        chunks: dict[str, dict[float, Candle]] = {s: {} for s in symbols}
        first = start - start % period
        at = first
        while at < end:  # chunks of at most MAX_CANDLES - 1 closed candles, none before start
            at = min(first + period * (MAX_CANDLES - 1), end)
            clock.advance_to(at)
            limit = int((clock.time() - first) // period) + 1
            for symbol in symbols:
                closed = (await feed.fetch_ohlcv(symbol, timeframe, limit))[:-1]
                chunks[symbol].update(
                    (c.ts, c) for c in closed if c.ts >= start and c.ts + period <= end
                )
            first = at - at % period
        for symbol, by_time in chunks.items():
            history.setdefault(symbol, {})[timeframe] = [by_time[t] for t in sorted(by_time)]
    return history
