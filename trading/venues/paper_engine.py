"""The paper exchange's own engine: what a real exchange does while nobody calls it, run before
every call and by `PaperExchange.advance()`.

- resting stops are checked against the price path since they were last checked. On a
  SyntheticFeed the path is the feed's exact mid price path, so a dip through a trigger between
  two calls triggers it, at the price of that moment (a shock's gap included); on recorded
  candles (trading/venues/recorded.py) it is their lows, and resting limits are checked against
  their highs and lows after the stops (a stop and a target in one candle: the stop first); on
  another feed (live prices in DRY_RUN) the path is the tickers seen, matched like limits;
- the dead man's switch (cancel-all-after) cancels every open order at its deadline, after the
  stops the market reached before it have triggered;
- resting limit orders are matched against every ticker that passes through, and before an
  account call against tickers refreshed at most once per REFRESH_SECONDS of clock time.
"""

from __future__ import annotations

import logging
import math

from trading.clock import Clock
from trading.errors import Fault
from trading.models import Side, Ticker
from trading.venues.paper_market import REFRESH_SECONDS, PaperMarket, RangePath
from trading.venues.paper_orders import PaperBook

log = logging.getLogger("trading.venues.paper")


class PaperEngine:
    """Runs one account's book against its market, up to clock time."""

    def __init__(self, book: PaperBook, market: PaperMarket, clock: Clock, label: str) -> None:
        self._book = book
        self._market = market
        self._clock = clock
        self._label = label
        self._refreshed_at = -math.inf

    def refresh_soon(self) -> None:
        """The next `settle` reads fresh prices for the resting orders (the market moved)."""
        self._refreshed_at = -math.inf

    async def settle(self) -> None:
        """Bring resting orders up to date before an account call answers."""
        self.catch_up()
        now = self._clock.monotonic()
        open_orders = self._book.open_orders()
        if not open_orders or now - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshed_at = now
        symbols = sorted({order.market.symbol for order in open_orders})
        try:
            tickers = await self._market.fetch(symbols)
        except Fault as fault:  # the feed's hiccup is not the account's: match next time
            log.debug("%s: price refresh for resting orders failed: %s", self._label, fault)
            return
        self.match(tickers)

    def match(self, tickers: dict[str, Ticker]) -> None:
        # With a price path, stops are the sweep's; without one, the tickers are all we know.
        self._book.match(tickers, stops=self._market.path is None)

    def catch_up(self) -> None:
        """Stops on the price path, and the dead man's switch at its deadline (a stop the market
        reached before it still triggers)."""
        now = self._clock.time()
        deadline = self._book.dead_man_deadline
        if deadline is not None and now > deadline:
            self._sweep_stops(deadline)
            self._book.dead_man_deadline = None
            open_orders = self._book.open_orders()
            if open_orders:
                log.info("%s: cancel-all-after expired, cancelling %d open orders",
                         self._label, len(open_orders))  # fmt: skip
            for order in open_orders:
                self._book.cancel(order)
        self._sweep_stops(now)

    def _sweep_stops(self, until: float) -> None:
        """Trigger the waiting stops whose price path reached them since they were last looked
        at (a SyntheticFeed's path; other feeds trigger stops on their tickers in `match`)."""
        feed = self._market.path
        if feed is None:
            return
        starts: dict[str, float] = {}  # an OCO's limit is swept over its stop's window
        for order in self._book.waiting_stops():
            since = starts[order.id] = order.watched_until
            if until < since:
                continue
            order.watched_until = until
            assert order.stop_price is not None
            touch = feed.first_touch(order.market.symbol, order.stop_price, since, until)
            if touch is not None:
                self._book.trigger(order, touch)
        ranges = self._market.ranges
        if ranges is not None:
            self._sweep_limits(ranges, until, starts)

    def _sweep_limits(self, feed: RangePath, until: float, starts: dict[str, float]) -> None:
        """Fill the resting limits a candle's high (sells) or low (buys) reached since they
        were last looked at."""
        for order in self._book.open_orders():
            since = starts.get(order.id, order.watched_until)
            if not order.resting_limit or until < since:
                continue
            order.watched_until = until
            symbol, rising = order.market.symbol, order.request.side is Side.SELL
            assert order.price is not None
            touch = feed.first_reach(symbol, order.price, rising, since, until)
            if touch is not None:
                self._book.match({symbol: touch}, stops=False)
