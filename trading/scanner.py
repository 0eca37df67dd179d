"""Find entry candidates across an exchange's whole universe within a request budget.

Where the exchange returns every ticker in one call, the scanner screens the WHOLE universe
every cycle with that one request, ranks it with the strategy's prescreen, and spends the rest
of the budget on candles for the best-ranked markets only. Where it cannot, it rotates through
the universe in batches sized by the budget, remembering where it stopped across cycles.

With an event feed that streams every ticker (`pushed`), the bulk screen reads those instead
of the bulk call, which then only re-seeds them now and then.

Faults: a candle fault (any Recoverable one) skips that candidate; a ticker fault
propagates (the engine skips the rest of the cycle); Fatal always propagates. When the
connector's own budget drops to 0 (its circuit opened mid-scan) the scanner stops spending.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from trading.errors import Recoverable
from trading.models import Candle, Market, Ticker
from trading.strategies.base import Signal, Strategy, closed_candles

if TYPE_CHECKING:
    from trading.connector import Connector

BULK = "bulk"
ROTATION = "rotation"
# Tickers the strategy's prescreen ranks between two turns of the event loop: a universe of
# 12,000 markets ranks in 13-25 ms, longer than a command may wait; 1,000 take 1-2 ms.
RANK_CHUNK = 1_000


class PushedTickers(Protocol):
    """Every market's ticker as an event feed keeps it (trading/feed_consumer.py)."""

    def all_prices(self) -> dict[str, Ticker] | None:
        """All tickers, or None: read them over REST and `seed` the feed with them."""

    def seed(self, tickers: dict[str, Ticker]) -> None: ...


class ReadTap(Protocol):
    """What the scan read, handed over as it arrives (trading/recorder.py: /record)."""

    def candles(self, symbol: str, timeframe: str, closed: Sequence[Candle]) -> None: ...

    def tickers(self, tickers: Mapping[str, Ticker]) -> None: ...


@dataclass(frozen=True)
class Candidate:
    """A market with an entry signal, and the ticker it was ranked on."""

    symbol: str
    signal: Signal
    ticker: Ticker


@dataclass(frozen=True)
class ScanResult:
    """One cycle's scan: candidates best first, and what it cost and covered."""

    candidates: list[Candidate]  # best first, entry signals only
    tickers: dict[str, Ticker]  # every ticker read this cycle (the engine prices positions)
    universe: int  # markets in the universe this cycle
    screened: int  # markets whose ticker was looked at this cycle
    requests: int  # requests spent
    mode: str  # "bulk" or "rotation"
    skipped: int = 0  # candidates whose candles faulted


class Scanner:
    """Screens one account's universe for the strategy, within the budget the engine grants."""

    def __init__(
        self,
        connector: Connector,
        strategy: Strategy,
        *,
        quote: str,
        min_quote_volume: float,
        log: logging.Logger | None = None,
        pushed: PushedTickers | None = None,
        tap: ReadTap | None = None,
        rank_chunk: int = RANK_CHUNK,
    ) -> None:
        self.connector = connector
        self.rank_chunk = rank_chunk
        self.pushed = pushed
        self.tap = tap
        self.strategy = strategy
        self.quote = quote
        self.min_quote_volume = min_quote_volume
        venue = connector.venue
        self.log = log or logging.getLogger(f"trading.{venue.name}.{venue.account}".lower())
        self._cursor = ""  # rotation: the last symbol screened; the next batch starts after it

    @property
    def bulk(self) -> bool:
        return bool(self.connector.venue.has_bulk_tickers)

    async def scan(
        self, *, exclude: set[str], budget: int, watch: Collection[str] = ()
    ) -> ScanResult:
        """Screen, rank and signal within `budget` requests.

        `exclude`: banned and held symbols, never candidates. `watch`: symbols whose tickers the
        caller also needs (held positions); the bulk call covers them anyway, rotation adds them
        to its ticker request.
        """
        if budget < 1 or self.connector.budget() < 1:
            return self._report(ScanResult([], {}, 0, 0, 0, self._mode()))
        loaded = 0
        markets = self.connector.markets
        if not markets:  # the engine loads them at start; a bare scanner does it itself
            markets, loaded = await self.connector.load_markets(), 1
        tradable = self._tradable(markets, exclude)
        if budget - loaded < 1:
            return self._report(ScanResult([], {}, len(tradable), 0, loaded, self._mode()))
        if self.bulk:
            result = await self._scan_bulk(tradable, budget - loaded)
        else:
            result = await self._scan_rotation(tradable, budget - loaded, watch)
        if self.tap is not None:
            self.tap.tickers(result.tickers)
        return self._report(replace(result, requests=result.requests + loaded))

    async def candles_for(self, symbol: str) -> dict[str, list[Candle]]:
        """The strategy's candle series for one symbol, closed candles only (faults
        propagate)."""
        return {tf: await self._closed(symbol, tf) for tf in self.strategy.timeframes}

    async def _closed(self, symbol: str, timeframe: str) -> list[Candle]:
        # One more than the strategy wants: an exchange returns the candle still forming last.
        limit = self.strategy.candle_limit
        series = await self.connector.candles(symbol, timeframe, limit + 1)
        closed = closed_candles(series, timeframe, self.connector.market_time(), limit)
        if self.tap is not None:
            self.tap.candles(symbol, timeframe, closed)
        return closed

    # -- the two ways to cover the universe

    async def _scan_bulk(self, tradable: list[str], budget: int) -> ScanResult:
        tickers = self.pushed.all_prices() if self.pushed is not None else None
        read = tickers is None
        if tickers is None:
            tickers = await self.connector.tickers()
            if self.pushed is not None:
                self.pushed.seed(tickers)
        liquid = [s for s in tradable if self._liquid(tickers.get(s))]
        unknown = [s for s in tradable if s not in tickers]  # no ticker: volume unknown
        ranked = await self._rank(liquid, tickers)
        candidates, spent, skipped = await self._signals(ranked, tickers, budget - read)
        universe = len(liquid) + len(unknown)
        return ScanResult(candidates, tickers, universe, len(liquid), read + spent, BULK, skipped)

    async def _scan_rotation(
        self, tradable: list[str], budget: int, watch: Collection[str]
    ) -> ScanResult:
        # Without a bulk call each ticker costs a request; size the batch so that every market
        # in it could still get its candles.
        per_market = 1 + len(self.strategy.timeframes)
        watched = sorted(set(watch))
        size = max(1, (budget - len(watched)) // per_market)
        batch = self._next_batch(tradable, size)
        wanted = batch + [s for s in watched if s not in batch]
        tickers = await self.connector.tickers(wanted) if wanted else {}
        spent = len(wanted)
        if batch:
            self._cursor = batch[-1]
        liquid = [s for s in batch if self._liquid(tickers.get(s))]
        ranked = await self._rank(liquid, tickers)
        candidates, candle_requests, skipped = await self._signals(ranked, tickers, budget - spent)
        spent += candle_requests
        return ScanResult(candidates, tickers, len(tradable), len(batch), spent, ROTATION, skipped)

    def _next_batch(self, tradable: list[str], size: int) -> list[str]:
        """The `size` markets after the cursor, wrapping around; robust to a changing universe."""
        if len(tradable) <= size:
            return list(tradable)
        start = bisect.bisect_right(tradable, self._cursor)
        batch = tradable[start : start + size]
        return batch + tradable[: size - len(batch)]

    # -- shared steps

    def _tradable(self, markets: dict[str, Market], exclude: set[str]) -> list[str]:
        return sorted(
            s
            for s, m in markets.items()
            if m.active and m.spot and m.quote == self.quote and s not in exclude
        )

    def _liquid(self, ticker: Ticker | None) -> bool:
        return ticker is not None and ticker.quote_volume >= self.min_quote_volume

    async def _rank(self, symbols: Sequence[str], tickers: dict[str, Ticker]) -> list[str]:
        """Best first by the strategy's prescreen, handing the loop back between chunks."""
        scored = []
        prescreen = self.strategy.prescreen
        for start in range(0, len(symbols), self.rank_chunk):
            if start:
                await asyncio.sleep(0)
            for symbol in symbols[start : start + self.rank_chunk]:
                score = prescreen(tickers[symbol])
                if score is not None:
                    scored.append((-score, symbol))
        scored.sort()
        return [symbol for _, symbol in scored]

    async def _signals(
        self, ranked: list[str], tickers: dict[str, Ticker], allowance: int
    ) -> tuple[list[Candidate], int, int]:
        """Candles and entry signals for the best-ranked markets while the budget lasts.
        Returns (candidates best first, requests spent, markets skipped on a fault)."""
        cost = len(self.strategy.timeframes)
        candidates: list[Candidate] = []
        spent = skipped = 0
        for symbol in ranked:
            if spent + cost > allowance or self.connector.budget() < 1:
                break
            candles, used = await self._candles(symbol)
            spent += used
            if candles is None:
                skipped += 1
                continue
            signal = self.strategy.entry(symbol, candles)
            if signal is not None:
                candidates.append(Candidate(symbol, signal, tickers[symbol]))
        candidates.sort(key=lambda c: (-c.signal.score, c.symbol))
        return candidates, spent, skipped

    async def _candles(self, symbol: str) -> tuple[dict[str, list[Candle]] | None, int]:
        series: dict[str, list[Candle]] = {}
        for used, timeframe in enumerate(self.strategy.timeframes, start=1):
            try:
                series[timeframe] = await self._closed(symbol, timeframe)
            except Recoverable as fault:
                self.log.info("scan skips %s: %s %s", symbol, fault.kind, fault.message)
                return None, used
        return series, len(self.strategy.timeframes)

    def _mode(self) -> str:
        return BULK if self.bulk else ROTATION

    def _report(self, result: ScanResult) -> ScanResult:
        # Every cycle: debug, or it buries the replies on the console (the paper demo cycles
        # every second).
        self.log.debug(
            "scanned %d/%d markets, %d requests, %d candidates (%s)",
            result.screened,
            result.universe,
            result.requests,
            len(result.candidates),
            result.mode,
        )
        return result
