"""The paper exchange: one simulated exchange account behind the same Venue interface as ccxt.

Prices come from a `MarketFeed` (trading/venues/market_sim.py): a SyntheticFeed offline, or a ccxt
venue's public data in DRY_RUN, as trading/venues/paper_market.py sees it. How orders fill is the
book's (trading/venues/paper_orders.py); when resting orders are looked at is the engine's
(trading/venues/paper_engine.py): before every call, and by `advance()` (no request: the exchange's
own engine running while no bot calls), stops on the price path since they were last checked,
limits against fresh tickers.

A real exchange's edges are simulated too: a token-bucket rate limit (`RateLimited` with
retry_after), an exchange clock that can drift (`ClockRejected` outside recv_window until
`sync_time`), and an exchange-side cancel-all-after; the rate limit and the exchange clock live in
trading/venues/paper_limits.py. Every call passes `_enter` and `_leave`, and `_before` between
them, which does nothing here: the test bench's `FaultyPaper` (sim/faults.py) overrides it to
script faults and latency. Nothing here is random: the feed is seeded, so the same calls at the
same clock times give the same fills and balances.

With a `PaperState` (trading/venues/paper_state.py) the account lives on disk: restored when the
exchange is built, saved by every call that changed it before that call answers, so a restart
continues with the same balances, orders and market. Without one it lives in memory only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence

from trading.clock import Clock
from trading.errors import OrderNotFound, Rejected, Transient
from trading.models import (
    Balance,
    Candle,
    Deliver,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Ticker,
)
from trading.venues.market_sim import MarketFeed, SyntheticFeed
from trading.venues.paper_engine import PaperEngine
from trading.venues.paper_feed import PaperFeed
from trading.venues.paper_limits import ExchangeClock, TokenBucket
from trading.venues.paper_market import PaperMarket
from trading.venues.paper_orders import PaperBook, PaperOrder
from trading.venues.paper_state import Keeper, PaperState, PaperStateError

log = logging.getLogger("trading.venues.paper")

# fmt: off
# Private endpoints: signed with a timestamp the exchange checks against its own clock.
SIGNED_CALLS = frozenset((
    "fetch_balance", "fetch_open_orders", "fetch_order", "find_order", "create_order",
    "cancel_order", "cancel_all_after",
))
# fmt: on


class PaperExchange:
    """A simulated exchange account (a Venue): synthetic or live prices, simulated fills,
    balances with reservations, a rate limit and a drifting clock.

    `shock(symbol, pct)` takes percent: -10 moves the price down 10 % from now on."""

    has_cancel_all_after = True
    stop_types = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.OCO)

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
        state: PaperState | None = None,
    ) -> None:
        self.name = name
        self.account = account
        self._clock = clock
        if feed is None:
            feed = SyntheticFeed(seed=seed, markets=markets, quote=quote, clock=clock)
        self._market = PaperMarket(feed, clock)
        self._quote = quote
        self._terms = {"fee_rate": fee_rate, "slippage": slippage, "fill_share": fill_share}
        self._starting = dict(balances) if balances is not None else {quote: 10_000.0}
        self._book = self._new_book()
        self._bucket = TokenBucket(clock, rate_limit, burst)  # rate_limit <= 0: no limit
        self._exchange_clock = ExchangeClock(clock, recv_window_ms)
        self._markets: dict[str, Market] | None = None
        self._engine = PaperEngine(self._book, self._market, clock, f"{name} {account}")
        self.calls: Counter[str] = Counter()
        self._keeper: Keeper | None = None
        if state is not None:
            identity = {"quote": quote, "market": self._market.identity(name)}
            self._keeper = Keeper(
                state, book=self._book, market=self._market, clock=clock, identity=identity
            )
        # Whether this continues an account an earlier process saved.
        self.restored = self._keeper.load() if self._keeper is not None else False

    # -- observability (no token taken) ---------------------------------------------------

    @property
    def feed(self) -> MarketFeed:
        return self._market.feed

    @property
    def has_bulk_tickers(self) -> bool:
        return self._market.has_bulk_tickers

    @property
    def has_price_path(self) -> bool:
        """Offline: the market's exact price path is known (stops trigger on it)."""
        return self._market.path is not None

    # -- the event stream (trading/venues/paper_feed.py) ----------------------------------------

    def open_feed(self, deliver: Deliver) -> PaperFeed:
        return PaperFeed(self, deliver)

    def listen(self, on_change: Callable[[str], None] | None) -> None:
        """Be told the id of every order that changes (None: stop)."""
        self._book.on_change = on_change

    def orders_by_id(self, ids: Sequence[str]) -> list[Order]:
        """These orders as they stand, without a request."""
        return [o.snapshot() for o in map(self._book.get, ids) if o is not None]

    async def peek_tickers(self) -> dict[str, Ticker]:
        """Every market's ticker now, without a request (the feed's ticker stream)."""
        return await self._market.fetch(None)

    def market_time(self) -> float:
        """This exchange's own time (paper time in the offline demo)."""
        return self._clock.time()

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

    @property
    def kept(self) -> bool:
        """Whether the account is kept on disk (else it lives in memory only)."""
        return self._keeper is not None

    @property
    def starting_balances(self) -> dict[str, float]:
        """What the account holds when it starts afresh (PAPER_BALANCE)."""
        return dict(self._starting)

    def reset(self) -> Balance:
        """Start the account afresh: the starting balances, no orders, the dead man's switch
        disarmed; the market goes on, and so do order ids (an id is never given twice). Saved
        before it takes effect: if the save fails, raises PaperStateError, nothing changed."""
        fresh = {**self._new_book().snapshot(), "next_id": self._book.head()["next_id"]}
        if self._keeper is not None:
            self._keeper.replace(fresh)
        self._book.restore(fresh)
        return self._book.balance()

    def price(self, symbol: str) -> float:
        """The current mid price of `symbol`."""
        return self._market.price(symbol)

    def shock(self, symbol: str, pct: float) -> None:
        """Move `symbol`'s price by `pct` percent from now on (-10: down 10 %)."""
        self._market.shock(symbol, pct)
        self._engine.refresh_soon()
        if self._keeper is not None:
            self._keeper.changed()
        self._save("shock")

    # -- test controls ------------------------------------------------------------------------

    def set_clock_skew(self, seconds: float) -> None:
        """Make the exchange's clock run `seconds` ahead of the local one (negative: behind)."""
        self._exchange_clock.set_skew(seconds)

    async def advance(self) -> None:
        """Run the exchange's own engine up to clock time without a request (no token, no
        signature): what it does while no bot calls it. Stops are checked on the price path,
        the dead man's switch fires, resting orders meet fresh tickers. Any call does the same
        first."""
        self._engine.refresh_soon()
        await self._engine.settle()
        self._save("advance")

    # -- the Venue interface ------------------------------------------------------------------

    async def load_markets(self) -> dict[str, Market]:
        pending = await self._enter("load_markets")
        self._markets = await self._market.feed.load_markets()
        self._leave(pending, "load_markets")
        return dict(self._markets)

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        pending = await self._enter("fetch_tickers")
        tickers = await self._market.fetch(symbols)
        self._engine.match(tickers)
        self._leave(pending, "fetch_tickers")
        return tickers

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        pending = await self._enter("fetch_ohlcv")
        candles = await self._market.feed.fetch_ohlcv(symbol, timeframe, limit)
        self._leave(pending, "fetch_ohlcv")
        return candles

    async def fetch_balance(self) -> Balance:
        pending = await self._enter("fetch_balance")
        await self._engine.settle()
        balance = self._book.balance()
        self._leave(pending, "fetch_balance")
        return balance

    async def fetch_open_orders(self) -> list[Order]:
        pending = await self._enter("fetch_open_orders")
        await self._engine.settle()
        orders = [order.snapshot() for order in self._book.open_orders()]
        self._leave(pending, "fetch_open_orders")
        return orders

    async def fetch_order(self, order_id: str, symbol: str) -> Order:
        pending = await self._enter("fetch_order")
        await self._engine.settle()
        order = self._record(order_id, symbol, "fetch_order").snapshot()
        self._leave(pending, "fetch_order")
        return order

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        """The order placed with this client order id, open or closed, if there is one."""
        pending = await self._enter("find_order")
        await self._engine.settle()
        order = self._book.by_client(symbol, client_order_id)
        self._leave(pending, "find_order")
        return order.snapshot() if order else None

    async def create_order(self, request: OrderRequest) -> Order:
        pending = await self._enter("create_order")
        markets = (
            self._markets if self._markets is not None else await self._market.feed.load_markets()
        )
        self._markets = markets
        market = self._tradable(markets, request.symbol)
        await self._engine.settle()
        ticker = await self._fresh_ticker(request.symbol)
        stamp = self._exchange_clock.time()  # the exchange stamps with its clock
        order = self._book.accept(request, market, ticker, stamp=stamp, now=self._clock.time())
        self._leave(pending, "create_order")
        return order.snapshot()

    async def cancel_order(self, order_id: str, symbol: str) -> Order:
        pending = await self._enter("cancel_order")
        await self._engine.settle()
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
        self._book.dead_man_deadline = self._clock.time() + timeout_seconds if armed else None
        if self._keeper is not None:
            self._keeper.changed()
        self._leave(pending, "cancel_all_after")

    async def sync_time(self) -> float:
        pending = await self._enter("sync_time")
        offset_ms = self._exchange_clock.sync()
        self._leave(pending, "sync_time")
        return offset_ms

    async def close(self) -> None:
        pending = await self._enter("close")
        closer = getattr(self._market.feed, "close", None)
        if closer is not None:  # a ccxt feed holds an HTTP session
            await closer()
        try:
            self._leave(pending, "close")
        finally:
            if self._keeper is not None:
                self._keeper.state.close()

    # -- every call: count, rate limit, exchange clock ----------------------------------------

    async def _enter(self, call: str) -> Callable[[], None] | None:
        """Admit one call; returns what `_before` asked to run once the call has taken effect.
        The exchange's engine catches up first, whether the call is then refused or not."""
        # A request is a round trip: the event loop serves everything else meanwhile, as it
        # does while a real exchange answers. Answered in-line, a cycle of many calls would
        # be one stretch that holds up every command and account on the loop.
        await asyncio.sleep(0)
        self._engine.catch_up()
        self._save(call)
        self.calls[call] += 1
        if call != "close":
            self._bucket.take(call, self.name)
        afterwards = await self._before(call)
        if call in SIGNED_CALLS:
            self._exchange_clock.check(call, self.name)
        return afterwards

    async def _before(self, call: str) -> Callable[[], None] | None:
        """A call admitted but not yet checked or carried out: a subclass may raise, take time,
        or return what to run once the call has taken effect. A well exchange does nothing."""
        return None

    def _leave(self, afterwards: Callable[[], None] | None, call: str) -> None:
        self._save(call)  # before the caller hears of what changed
        if afterwards is not None:
            afterwards()

    def _rejected(self, message: str, call: str) -> Rejected:
        return Rejected(message, venue=self.name, call=call)

    @property
    def rate_limit(self) -> float:
        """Requests per second the bucket refills (<= 0: unlimited), so callers can pace."""
        return self._bucket.rate

    @property
    def clock(self) -> Clock:
        """The clock the exchange counts its time and its rate limit in (paper time)."""
        return self._clock

    # -- prices and matching --------------------------------------------------------------------

    async def _fresh_ticker(self, symbol: str) -> Ticker:
        recent = self._market.recent(symbol)
        if recent is not None:
            return recent
        tickers = await self._market.fetch([symbol])
        self._engine.match(tickers)
        ticker = tickers.get(symbol)
        if ticker is None:
            raise Transient(f"no ticker for {symbol}", venue=self.name, call="create_order")
        return ticker

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

    # -- the account on disk ----------------------------------------------------------------------

    def _new_book(self) -> PaperBook:
        return PaperBook(venue=self.name, quote=self._quote, balances=self._starting, **self._terms)

    def _save(self, call: str) -> None:
        """Write what changed since the last save. A failure is the exchange failing the call:
        what changed stays in memory and goes with the next save."""
        if self._keeper is None:
            return
        try:
            self._keeper.save()
        except PaperStateError as exc:
            log.error("%s %s: %s", self.name, self.account, exc)
            raise Transient(str(exc), venue=self.name, call=call) from exc
