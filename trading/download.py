"""Downloading candle history into the market data layout (trading/venues/market_files.py).

Each series (a symbol in a timeframe) resumes after the last candle its file holds, or starts
`days` back; pages are asked for one after another, each appended to the file before the next
is asked for, so an interrupted download loses at most the page in flight. Only closed candles
are written: one that has not closed by the start of the download (less a margin for the two
clocks' difference) is left for the next run. A read that times out or is rate limited is
retried with backoff; anything else ends the download with the fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from trading.clock import Clock
from trading.errors import RateLimited, Transient
from trading.models import TIMEFRAME_SECONDS, Candle, Market, Ticker
from trading.retry import retry
from trading.venues.market_files import append_candles, last_time

DAY = 86_400.0
CLOCK_MARGIN = 10.0  # seconds: a candle must have closed this long before the start
ATTEMPTS = 5


class HistorySource(Protocol):
    """What a download reads (trading/venues/ccxt_history.py)."""

    name: str

    async def load_markets(self) -> dict[str, Market]: ...

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]: ...

    async def candles_since(self, symbol: str, timeframe: str, since: float) -> list[Candle]: ...


@dataclass(frozen=True)
class SeriesDone:
    """One series downloaded: how many candles were added, and whether it resumed a file."""

    symbol: str
    timeframe: str
    added: int
    resumed: bool


@dataclass(frozen=True)
class Progress:
    """Where a download stands, after each page and each series."""

    index: int  # of the symbol being read, from 0
    symbols: int  # to read in all
    symbol: str
    timeframe: str
    added: int  # candles added so far, all series together
    done: SeriesDone | None = None  # the series just finished, if one did


async def choose_symbols(source: HistorySource, *, quote: str, top: int) -> list[str]:
    """The `top` active spot markets quoted in `quote`, largest 24 h quote volume first."""
    markets = await source.load_markets()
    wanted = sorted(s for s, m in markets.items() if m.active and m.spot and m.quote == quote)
    tickers = await source.fetch_tickers(wanted)
    ranked = sorted(wanted, key=lambda s: (-_volume(tickers.get(s)), s))
    return ranked[:top]


async def download(
    source: HistorySource,
    folder: Path,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    *,
    days: float,
    clock: Clock,
    progress: Callable[[Progress], None] = lambda _p: None,
) -> list[SeriesDone]:
    """Every symbol in every timeframe, `days` back from now, into `folder`."""
    until = clock.time() - CLOCK_MARGIN
    done: list[SeriesDone] = []
    added = 0
    for index, symbol in enumerate(symbols):
        for timeframe in timeframes:
            now = Progress(index, len(symbols), symbol, timeframe, added)
            series = await _series(
                source, folder, symbol, timeframe, start=until - days * DAY, until=until,
                clock=clock, page=lambda n, at=now: progress(replace(at, added=at.added + n)),
            )  # fmt: skip
            added += series.added
            done.append(series)
            progress(replace(now, added=added, done=series))
    return done


async def _series(
    source: HistorySource,
    folder: Path,
    symbol: str,
    timeframe: str,
    *,
    start: float,
    until: float,
    clock: Clock,
    page: Callable[[int], None],
) -> SeriesDone:
    period = TIMEFRAME_SECONDS[timeframe]
    stored = last_time(folder, symbol, timeframe)
    first = start - start % period
    since = first if stored is None else max(first, stored + period)
    added = 0
    while since + period <= until:
        candles = await retry(
            lambda at=since: source.candles_since(symbol, timeframe, at),
            clock=clock,
            attempts=ATTEMPTS,
            should_retry=lambda fault: isinstance(fault, Transient | RateLimited),
        )
        closed = [c for c in candles if c.ts >= since and c.ts + period <= until]
        if not closed:
            break
        added += append_candles(folder, symbol, timeframe, closed)
        since = closed[-1].ts + period
        page(added)
    return SeriesDone(symbol, timeframe, added, stored is not None)


def _volume(ticker: Ticker | None) -> float:
    return ticker.quote_volume if ticker is not None else 0.0
