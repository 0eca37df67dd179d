"""The prices a paper exchange sees: its feed (a SyntheticFeed offline, a ccxt venue's public
data in DRY_RUN), shocks laid over a feed that cannot shock itself, and the tickers it saw last,
so resting orders are matched against prices at most REFRESH_SECONDS stale without asking the
feed on every call.

What a restart needs of it (`state`/`restore`, kept by trading/venues/paper_state.py): a
SyntheticFeed's own state (its anchor day and shocks) or the shocks laid over live prices. The
tickers seen are a cache: the next call reads fresh ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from trading.clock import Clock
from trading.models import Ticker
from trading.venues.market_sim import MarketFeed, SyntheticFeed

REFRESH_SECONDS = 1.0  # resting orders see prices at most this stale; the feed is asked no more


@runtime_checkable
class PricePath(Protocol):
    """A feed that knows its prices between calls (a SyntheticFeed's path, recorded candles'
    lows), so a resting stop triggers where the market reached it, not at the next ticker."""

    def price(self, symbol: str, at: float | None = None) -> float: ...

    def first_touch(
        self, symbol: str, level: float, since: float, until: float
    ) -> Ticker | None: ...


@runtime_checkable
class RangePath(PricePath, Protocol):
    """A price path with each candle's range: resting limits fill where a high or low reached
    them (recorded candles)."""

    def first_reach(
        self, symbol: str, level: float, rising: bool, since: float, until: float
    ) -> Ticker | None: ...


class PaperMarket:
    """One paper exchange's market data. `shock(symbol, pct)` takes percent: -10 moves the
    price down 10 % from now on."""

    def __init__(self, feed: MarketFeed, clock: Clock) -> None:
        self.feed = feed
        self._clock = clock
        # A runtime protocol check is slow, and the feed never changes: look once.
        self._path = feed if isinstance(feed, PricePath) else None
        self._range = feed if isinstance(feed, RangePath) else None
        self._tickers: dict[str, Ticker] = {}
        self._seen_at: dict[str, float] = {}  # monotonic time each ticker was read
        self._overlay: dict[str, float] = {}  # shocks on a feed that cannot shock itself

    @property
    def path(self) -> PricePath | None:
        """The feed whose price path is known (stops trigger on it), if it is one."""
        return self._path

    @property
    def ranges(self) -> RangePath | None:
        """The feed whose candles' highs and lows fill resting limits, if it is one."""
        return self._range

    @property
    def synthetic(self) -> SyntheticFeed | None:
        """The feed that can shock itself and be drawn again after a restart, if it is one."""
        return self.feed if isinstance(self.feed, SyntheticFeed) else None

    @property
    def has_bulk_tickers(self) -> bool:
        return bool(getattr(self.feed, "has_bulk_tickers", False))

    def price(self, symbol: str) -> float:
        """The current mid price of `symbol`."""
        if self.path is not None:
            return self.path.price(symbol) * self._overlay.get(symbol, 1.0)
        ticker = self._tickers.get(symbol)
        if ticker is None:
            raise KeyError(f"no price seen yet for {symbol}")
        return (ticker.bid + ticker.ask) / 2

    def shock(self, symbol: str, pct: float) -> None:
        if self.synthetic is not None:
            self.synthetic.shock(symbol, pct)
        else:
            if pct <= -100.0:
                raise ValueError(f"a shock of {pct} % would take the price to zero or below")
            self._overlay[symbol] = self._overlay.get(symbol, 1.0) * (1.0 + pct / 100.0)
            self._tickers.pop(symbol, None)
        self._seen_at.pop(symbol, None)  # the next order or account call sees the new price

    async def fetch(self, symbols: Sequence[str] | None) -> dict[str, Ticker]:
        """Tickers from the feed, shocks applied, remembered."""
        tickers = await self.feed.fetch_tickers(symbols)
        if self._overlay:
            tickers = {symbol: self._shifted(t) for symbol, t in tickers.items()}
        self._tickers.update(tickers)
        self._seen_at.update(dict.fromkeys(tickers, self._clock.monotonic()))
        return tickers

    def recent(self, symbol: str) -> Ticker | None:
        """The ticker last seen, if it is younger than REFRESH_SECONDS."""
        seen = self._seen_at.get(symbol)
        if seen is not None and self._clock.monotonic() - seen < REFRESH_SECONDS:
            return self._tickers[symbol]
        return None

    # -- what a restart needs ------------------------------------------------------------------

    def identity(self, venue: str) -> dict[str, Any]:
        """Which universe this is: a synthetic one by its seed and size, or live prices."""
        return self.synthetic.identity if self.synthetic is not None else {"live": venue}

    def state(self) -> dict[str, Any]:
        return {
            "overlay": dict(self._overlay),
            "feed": self.synthetic.state() if self.synthetic is not None else None,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._overlay = {str(s): float(k) for s, k in state["overlay"].items()}
        if self.synthetic is not None:
            self.synthetic.restore(state["feed"])

    def _shifted(self, ticker: Ticker) -> Ticker:
        k = self._overlay.get(ticker.symbol, 1.0)
        if k == 1.0:
            return ticker
        return Ticker(
            symbol=ticker.symbol,
            last=ticker.last * k,
            bid=ticker.bid * k,
            ask=ticker.ask * k,
            quote_volume=ticker.quote_volume,
            change_pct=((1 + ticker.change_pct / 100) * k - 1) * 100,
            timestamp=ticker.timestamp,
        )
