"""Candle history from an exchange's public API, for `python -m chatbot download`.

`CcxtHistory` is a public-only `CcxtVenue` (no key: markets, tickers, its faults translated
the same way) that also reads candles from a given time on: ccxt's `fetch_ohlcv` with `since`,
one page per call, the paging left to the caller (trading/download.py), so that each page is on
disk before the next is asked for. The client is the venue's: ccxt's rate limiter on, paced at
the exchange's own rate (trading/pacing.py).
"""

from __future__ import annotations

from trading.models import TIMEFRAME_SECONDS, Candle
from trading.venues.ccxt_exchanges import known_exchange_ids
from trading.venues.ccxt_venue import CcxtVenue

# The most candles one page asks for; an exchange that gives fewer per call (Kraken 720,
# OKX 300) answers with what it has and the caller pages on from the last one it got.
PAGE = 1000


class HistoryRefused(ValueError):
    """The exchange or timeframe asked for cannot be downloaded; the message names it."""


class CcxtHistory(CcxtVenue):
    """One exchange's public market data, candles paged by time."""

    def __init__(self, exchange_id: str, *, config: dict | None = None) -> None:
        if exchange_id not in known_exchange_ids():
            raise HistoryRefused(f"unknown exchange {exchange_id!r} (ccxt does not know it)")
        super().__init__(exchange_id, "history", config=config)
        if not self._exchange.has.get("fetchOHLCV"):
            raise HistoryRefused(f"{exchange_id} offers no candles through ccxt")
        # An exchange that lists no timeframes takes any ccxt knows.
        self.timeframes = frozenset(self._exchange.timeframes or TIMEFRAME_SECONDS)

    def check_timeframe(self, timeframe: str) -> None:
        """Refuse a timeframe the bot cannot replay or the exchange does not offer."""
        if timeframe not in TIMEFRAME_SECONDS:
            known = ", ".join(TIMEFRAME_SECONDS)
            raise HistoryRefused(f"timeframe {timeframe!r}: the bot reads {known}")
        if timeframe not in self.timeframes:
            raise HistoryRefused(f"timeframe {timeframe!r}: {self.name} does not offer it")

    async def candles_since(self, symbol: str, timeframe: str, since: float) -> list[Candle]:
        """One page of candles, the first opening at or after `since` (epoch seconds); the
        last may be the one still forming."""

        async def run() -> list[Candle]:
            rows = await self._exchange.fetch_ohlcv(
                symbol, timeframe, since=round(since * 1000), limit=PAGE
            )
            return [
                Candle(r[0] / 1000, *map(float, r[1:6]))
                for r in rows
                if len(r) >= 6 and None not in r[:6]
            ]

        return await self._call("fetch_ohlcv", run)
