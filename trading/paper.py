"""The paper exchange: one simulated exchange account behind the same Venue interface as ccxt.

Prices come from a `MarketFeed` (trading/market_sim.py): a SyntheticFeed offline, or a ccxt
venue's public data in DRY_RUN. How orders fill is the book's (trading/paper_orders.py); this
module decides when they are looked at:

- resting limit orders are matched against every ticker that passes through, and before an
  account call against tickers refreshed at most once per second of clock time;
- resting stops are checked against the price path since they were last checked, whenever the
  exchange is touched by any call, and by `advance()` (no request: the exchange's own engine
  running while no bot calls). On a SyntheticFeed the path is the feed's exact mid price path,
  so a dip through a trigger between two calls triggers it, at the price of that moment (a
  shock's gap included); on another feed (live prices in DRY_RUN) the path is the tickers seen.

An exchange's edges are simulated too, for tests, benchmarks and the chaos soak: a token-bucket
rate limit (`RateLimited` with retry_after), an exchange clock that can drift
(`ClockRejected` outside recv_window until `sync_time`), an exchange-side cancel-all-after, and
fault injection per call (`inject`); the rate limit, the exchange clock and the injections live
in trading/paper_faults.py. Nothing here is random: the feed is seeded, so the same calls at the
same clock times give the same fills and balances.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence

from trading.clock import Clock
from trading.errors import Fault, OrderNotFound, Rejected, Transient
from trading.market_sim import MarketFeed, SyntheticFeed
from trading.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Ticker,
)
from trading.paper_faults import ExchangeClock, FaultPlan, FaultSpec, Injection, RequestBudget
from trading.paper_orders import PaperBook, PaperOrder

log = logging.getLogger("trading.paper")

# fmt: off
VENUE_CALLS = frozenset((
    "load_markets", "fetch_tickers", "fetch_ohlcv", "fetch_balance", "fetch_open_orders",
    "fetch_order", "find_order", "create_order", "cancel_order", "cancel_all_after", "sync_time",
    "close",
))
# Private endpoints: signed with a timestamp the exchange checks against its own clock.
SIGNED_CALLS = frozenset((
    "fetch_balance", "fetch_open_orders", "fetch_order", "find_order", "create_order",
    "cancel_order", "cancel_all_after",
))
# fmt: on
REFRESH_SECONDS = 1.0  # resting orders see prices at most this stale; the feed is asked no more


class PaperExchange:
    """A simulated exchange account (a Venue): synthetic or live prices, simulated fills,
    balances with reservations, a rate limit, a drifting clock, and injectable faults.

    `shock(symbol, pct)` takes percent: -10 moves the price down 10 % from now on."""

    has_cancel_all_after = True
    stop_types = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)

    def __init__(
        self,
        *,
        clock: Clock,
        name: str = "paper",
        account: str = "MAIN",
        feed: MarketFeed | None = None,
        quote: str = "USDT",
        balances: dict[str, float] | None = None,
        fee_rate: float = 0.001,
        slippage: float = 0.0005,
        rate_limit: float = 20.0,
        burst: int = 40,
        seed: int = 1,
        markets: int = 50,
        recv_window_ms: float = 10_000,
        fill_share: float = 1.0,
    ) -> None:
        self.name = name
        self.account = account
        self._clock = clock
        if feed is None:
            feed = SyntheticFeed(seed=seed, markets=markets, quote=quote, clock=clock)
        self._feed: MarketFeed = feed
        self._book = PaperBook(
            venue=name,
            quote=quote,
            balances=balances if balances is not None else {quote: 10_000.0},
            fee_rate=fee_rate,
            slippage=slippage,
            fill_share=fill_share,
        )
        self._budget = RequestBudget(clock, rate_limit, burst)  # rate_limit <= 0: no limit
        self._exchange_clock = ExchangeClock(clock, recv_window_ms)
        self._faults = FaultPlan(VENUE_CALLS)
        self._markets: dict[str, Market] | None = None
        self._tickers: dict[str, Ticker] = {}
        self._seen_at: dict[str, float] = {}  # monotonic time each ticker was read
        self._refreshed_at = -math.inf
        self._overlay: dict[str, float] = {}  # shocks on a feed that cannot shock itself
        self._dead_man_deadline: float | None = None
        self.calls: Counter[str] = Counter()

    # -- observability (no token taken) ---------------------------------------------------

    @property
    def feed(self) -> MarketFeed:
        return self._feed

    @property
    def has_bulk_tickers(self) -> bool:
        return bool(getattr(self._feed, "has_bulk_tickers", False))

    @property
    def clock_offset_ms(self) -> float:
        return self._exchange_clock.offset_ms

    @property
    def order_log(self) -> list[Order]:
        """Every order the exchange accepted, in creation order, as it stands now."""
        return [order.snapshot() for order in self._book.all_orders()]

    def peek_balance(self) -> Balance:
        """The balance as it stands, without a request (for test and benchmark assertions)."""
        return self._book.balance()

    def price(self, symbol: str) -> float:
        """The current mid price of `symbol`."""
        if isinstance(self._feed, SyntheticFeed):
            return self._feed.price(symbol)
        ticker = self._tickers.get(symbol)
        if ticker is None:
            raise KeyError(f"no price seen yet for {symbol}")
        return (ticker.bid + ticker.ask) / 2

    def shock(self, symbol: str, pct: float) -> None:
        """Move `symbol`'s price by `pct` percent from now on (-10: down 10 %)."""
        if isinstance(self._feed, SyntheticFeed):
            self._feed.shock(symbol, pct)
        else:
            if pct <= -100.0:
                raise ValueError(f"a shock of {pct} % would take the price to zero or below")
            self._overlay[symbol] = self._overlay.get(symbol, 1.0) * (1.0 + pct / 100.0)
            self._tickers.pop(symbol, None)
        self._seen_at.pop(symbol, None)  # the next order or account call sees the new price
        self._refreshed_at = -math.inf

    # -- test controls ------------------------------------------------------------------------

    def set_clock_skew(self, seconds: float) -> None:
        """Make the exchange's clock run `seconds` ahead of the local one (negative: behind)."""
        self._exchange_clock.set_skew(seconds)

    def inject(
        self,
        call: str,
        fault: FaultSpec,
        *,
        count: int = 1,
        latency: float = 0.0,
        after: bool = False,
    ) -> None:
        """Make the next `count` calls of `call` ("*": any call; count=-1: for ever) raise
        `fault`, after `latency` seconds of clock time. after=True: the call takes effect and
        then raises (an order accepted whose answer was lost). A fault class is instantiated
        with a message; a non-Fault exception is raised as is, like a bug."""
        self._faults.inject(call, fault, count=count, latency=latency, after=after)

    def inject_latency(self, call: str, seconds: float, count: int = 1) -> None:
        """Make the next `count` calls of `call` take `seconds` of clock time, and succeed."""
        self._faults.inject_latency(call, seconds, count)

    def clear_faults(self) -> None:
        self._faults.clear()

    async def advance(self) -> None:
        """Run the exchange's own engine up to clock time without a request (no token, no fault,
        no signature): what it does while no bot calls it. Stops are checked on the price path,
        the dead man's switch fires, resting orders meet fresh tickers. Any call does the same
        first."""
        self._catch_up()
        self._refreshed_at = -math.inf
        await self._settle()

    # -- the Venue interface ------------------------------------------------------------------

    async def load_markets(self) -> dict[str, Market]:
        pending = await self._enter("load_markets")
        self._markets = await self._feed.load_markets()
        self._leave(pending, "load_markets")
        return dict(self._markets)

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        pending = await self._enter("fetch_tickers")
        tickers = self._remember(await self._feed.fetch_tickers(symbols))
        self._match(tickers)
        self._leave(pending, "fetch_tickers")
        return tickers

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        pending = await self._enter("fetch_ohlcv")
        candles = await self._feed.fetch_ohlcv(symbol, timeframe, limit)
        self._leave(pending, "fetch_ohlcv")
        return candles

    async def fetch_balance(self) -> Balance:
        pending = await self._enter("fetch_balance")
        await self._settle()
        balance = self._book.balance()
        self._leave(pending, "fetch_balance")
        return balance

    async def fetch_open_orders(self) -> list[Order]:
        pending = await self._enter("fetch_open_orders")
        await self._settle()
        orders = [order.snapshot() for order in self._book.open_orders()]
        self._leave(pending, "fetch_open_orders")
        return orders

    async def fetch_order(self, order_id: str, symbol: str) -> Order:
        pending = await self._enter("fetch_order")
        await self._settle()
        order = self._record(order_id, symbol, "fetch_order").snapshot()
        self._leave(pending, "fetch_order")
        return order

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        """The order placed with this client order id, open or closed, if there is one."""
        pending = await self._enter("find_order")
        await self._settle()
        order = self._book.by_client(symbol, client_order_id)
        self._leave(pending, "find_order")
        return order.snapshot() if order else None

    async def create_order(self, request: OrderRequest) -> Order:
        pending = await self._enter("create_order")
        markets = self._markets if self._markets is not None else await self._feed.load_markets()
        self._markets = markets
        market = self._tradable(markets, request.symbol)
        await self._settle()
        ticker = await self._fresh_ticker(request.symbol)
        stamp = self._exchange_clock.time()  # the exchange stamps with its clock
        order = self._book.accept(request, market, ticker, stamp=stamp, now=self._clock.time())
        self._leave(pending, "create_order")
        return order.snapshot()

    async def cancel_order(self, order_id: str, symbol: str) -> Order:
        pending = await self._enter("cancel_order")
        await self._settle()
        order = self._record(order_id, symbol, "cancel_order")
        if order.status is not OrderStatus.OPEN:
            # What real exchanges answer (Binance -2011 "Unknown order sent."): nothing to cancel.
            raise OrderNotFound(
                f"order {order_id} already closed ({order.status.value})",
                venue=self.name,
                call="cancel_order",
            )
        self._book.cancel(order)
        self._leave(pending, "cancel_order")
        return order.snapshot()

    async def cancel_all_after(self, timeout_seconds: float) -> None:
        """Arm or refresh the dead man's switch: every open order is cancelled once clock time
        passes now + timeout without another refresh (0 disarms)."""
        pending = await self._enter("cancel_all_after")
        armed = timeout_seconds > 0
        self._dead_man_deadline = self._clock.time() + timeout_seconds if armed else None
        self._leave(pending, "cancel_all_after")

    async def sync_time(self) -> float:
        pending = await self._enter("sync_time")
        offset_ms = self._exchange_clock.sync()
        self._leave(pending, "sync_time")
        return offset_ms

    async def close(self) -> None:
        pending = await self._enter("close")
        closer = getattr(self._feed, "close", None)
        if closer is not None:  # a ccxt feed holds an HTTP session
            await closer()
        self._leave(pending, "close")

    # -- every call: count, rate limit, injected faults, exchange clock -----------------------

    async def _enter(self, call: str) -> Injection | None:
        """Admit one call; returns an injection to raise once the call has taken effect. The
        exchange's engine catches up first, whether the call is then refused or not."""
        self._catch_up()
        self.calls[call] += 1
        if call != "close":
            self._budget.take(call, self.name)
        injection, latency = self._faults.due(call)
        if latency > 0:
            await self._clock.sleep(latency)
            self._catch_up()
        if injection is not None and not injection.after:
            raise injection.exception(self.name, call)
        if call in SIGNED_CALLS:
            self._exchange_clock.check(call, self.name)
        return injection

    def _leave(self, injection: Injection | None, call: str) -> None:
        if injection is not None:
            raise injection.exception(self.name, call)

    def _rejected(self, message: str, call: str) -> Rejected:
        return Rejected(message, venue=self.name, call=call)

    @property
    def rate_limit(self) -> float:
        """Requests per second the bucket refills (<= 0: unlimited), so callers can pace."""
        return self._budget.rate

    # -- prices and matching --------------------------------------------------------------------

    def _remember(self, tickers: dict[str, Ticker]) -> dict[str, Ticker]:
        if self._overlay:
            tickers = {symbol: self._shifted(t) for symbol, t in tickers.items()}
        self._tickers.update(tickers)
        self._seen_at.update(dict.fromkeys(tickers, self._clock.monotonic()))
        return tickers

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

    async def _fresh_ticker(self, symbol: str) -> Ticker:
        seen = self._seen_at.get(symbol)
        if seen is not None and self._clock.monotonic() - seen < REFRESH_SECONDS:
            return self._tickers[symbol]
        tickers = self._remember(await self._feed.fetch_tickers([symbol]))
        self._match(tickers)
        ticker = tickers.get(symbol)
        if ticker is None:
            raise Transient(f"no ticker for {symbol}", venue=self.name, call="create_order")
        return ticker

    async def _settle(self) -> None:
        """Bring resting orders up to date before an account call answers."""
        self._catch_up()
        now = self._clock.monotonic()
        open_orders = self._book.open_orders()
        if not open_orders or now - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshed_at = now
        symbols = sorted({order.market.symbol for order in open_orders})
        try:
            tickers = self._remember(await self._feed.fetch_tickers(symbols))
        except Fault as fault:  # the feed's hiccup is not the account's: match next time
            log.debug(
                "%s %s: price refresh for resting orders failed: %s", self.name, self.account, fault
            )
            return
        self._match(tickers)

    def _match(self, tickers: dict[str, Ticker]) -> None:
        # With a price path, stops are the sweep's; without one, the tickers are all we know.
        self._book.match(tickers, stops=not isinstance(self._feed, SyntheticFeed))

    def _catch_up(self) -> None:
        """The exchange's own engine, up to clock time: stops on the price path, and the dead
        man's switch at its deadline (a stop the market reached before it still triggers)."""
        now = self._clock.time()
        deadline = self._dead_man_deadline
        if deadline is not None and now > deadline:
            self._sweep_stops(deadline)
            self._dead_man_deadline = None
            open_orders = self._book.open_orders()
            if open_orders:
                log.info("%s %s: cancel-all-after expired, cancelling %d open orders",
                         self.name, self.account, len(open_orders))  # fmt: skip
            for order in open_orders:
                self._book.cancel(order)
        self._sweep_stops(now)

    def _sweep_stops(self, until: float) -> None:
        """Trigger the waiting stops whose price path reached them since they were last looked
        at (a SyntheticFeed's path; other feeds trigger stops on their tickers in `_match`)."""
        feed = self._feed
        if not isinstance(feed, SyntheticFeed):
            return
        for order in self._book.waiting_stops():
            since = order.watched_until
            if until < since:
                continue
            order.watched_until = until
            assert order.stop_price is not None
            touch = feed.first_touch(order.market.symbol, order.stop_price, since, until)
            if touch is not None:
                self._book.trigger(order, touch)

    # -- orders ---------------------------------------------------------------------------------

    def _tradable(self, markets: dict[str, Market], symbol: str) -> Market:
        market = markets.get(symbol)
        if market is None:
            raise self._rejected(f"unknown symbol {symbol}", "create_order")
        if not market.active:
            raise self._rejected(f"market {symbol} is not active", "create_order")
        return market

    def _record(self, order_id: str, symbol: str, call: str) -> PaperOrder:
        order = self._book.get(order_id)
        if order is None or order.market.symbol != symbol:
            raise OrderNotFound(
                f"order {order_id} ({symbol}) not found", venue=self.name, call=call
            )
        return order
