"""The paper exchange: one simulated exchange account behind the same Venue interface as ccxt.

Prices come from a `MarketFeed` (trading/market_sim.py): a SyntheticFeed offline, or a ccxt
venue's public data in DRY_RUN. Fills are simulated here and only ever look at the feed's
tickers, so both feeds run exactly the same order code:

- market orders fill at once at ask (buy) / bid (sell), moved against the taker by `slippage`;
- limit orders rest OPEN with funds reserved (quote for buys, base for sells) and fill at the
  limit price once a ticker crosses it (buy: ask <= limit; sell: bid >= limit); resting orders
  are matched against every ticker that passes through, and before an account call against
  tickers refreshed at most once per second of clock time; with `fill_share` below 1 each
  crossing fills only that share of a resting order (a thin book's partial fills);
- the fee is `fee_rate` of the notional, in the quote currency.

An exchange's edges are simulated too, for tests, benchmarks and the chaos soak: a token-bucket
rate limit (`RateLimited` with retry_after), an exchange clock that can drift
(`ClockRejected` outside recv_window until `sync_time`), an exchange-side cancel-all-after, and
fault injection per call (`inject`); the rate limit, the exchange clock and the injections live
in trading/paper_faults.py, the book here. Nothing here is random: the feed is seeded, so the
same calls at the same clock times give the same fills and balances.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from trading.clock import Clock
from trading.errors import DuplicateOrder, Fault, OrderNotFound, Rejected, Transient
from trading.market_sim import MarketFeed, SyntheticFeed
from trading.models import (
    Balance,
    Candle,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)
from trading.paper_faults import ExchangeClock, FaultPlan, FaultSpec, Injection, RequestBudget

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
DUST = 1e-12


@dataclass(slots=True)
class _Record:
    """An order as the exchange keeps it (mutable until it closes)."""

    id: str
    request: OrderRequest
    market: Market
    amount: float
    price: float | None
    timestamp: float
    status: OrderStatus = OrderStatus.OPEN
    filled: float = 0.0
    average: float | None = None
    fee_cost: float = 0.0
    reserved: float = 0.0  # in reserve_currency while open

    @property
    def reserve_currency(self) -> str:
        return self.market.quote if self.request.side is Side.BUY else self.market.base

    def snapshot(self) -> Order:
        return Order(
            id=self.id,
            symbol=self.market.symbol,
            side=self.request.side,
            type=self.request.type,
            amount=self.amount,
            filled=self.filled,
            status=self.status,
            timestamp=self.timestamp,
            client_order_id=self.request.client_order_id,
            price=self.price,
            average=self.average,
            fee_cost=self.fee_cost,
            fee_currency=self.market.quote,
        )


def _crosses(buy: bool, price: float, ticker: Ticker) -> bool:
    """Whether a limit order at `price` trades against this ticker."""
    return ticker.ask <= price if buy else ticker.bid >= price


def _step_digits(step: float) -> int:
    return max(0, -math.floor(math.log10(step))) + 6


def _floor_to(value: float, step: float | None) -> float:
    if not step:
        return value
    return round(math.floor(value / step + 1e-9) * step, _step_digits(step))


def _round_to(value: float, step: float | None) -> float:
    if not step:
        return value
    return round(round(value / step) * step, _step_digits(step))


class PaperExchange:
    """A simulated exchange account (a Venue): synthetic or live prices, simulated fills,
    balances with reservations, a rate limit, a drifting clock, and injectable faults.

    `shock(symbol, pct)` takes percent: -10 moves the price down 10 % from now on."""

    has_cancel_all_after = True

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
        self._quote = quote
        self._totals: dict[str, float] = (
            dict(balances) if balances is not None else {quote: 10_000.0}
        )
        self._fee_rate = fee_rate
        self._slippage = slippage
        self._fill_share = fill_share
        self._budget = RequestBudget(clock, rate_limit, burst)  # rate_limit <= 0: no limit
        self._exchange_clock = ExchangeClock(clock, recv_window_ms)
        self._faults = FaultPlan(VENUE_CALLS)
        self._markets: dict[str, Market] | None = None
        self._tickers: dict[str, Ticker] = {}
        self._seen_at: dict[str, float] = {}  # monotonic time each ticker was read
        self._refreshed_at = -math.inf
        self._overlay: dict[str, float] = {}  # shocks on a feed that cannot shock itself
        self._orders: dict[str, _Record] = {}  # every accepted order, in creation order
        self._open: dict[str, _Record] = {}
        self._by_client: dict[tuple[str, str], _Record] = {}
        self._next_id = 1
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
        return [record.snapshot() for record in self._orders.values()]

    def peek_balance(self) -> Balance:
        """The balance as it stands, without a request (for test and benchmark assertions)."""
        return self._balance()

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
        balance = self._balance()
        self._leave(pending, "fetch_balance")
        return balance

    async def fetch_open_orders(self) -> list[Order]:
        pending = await self._enter("fetch_open_orders")
        await self._settle()
        orders = [record.snapshot() for record in self._open.values()]
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
        record = self._by_client.get((symbol, client_order_id))
        self._leave(pending, "find_order")
        return record.snapshot() if record else None

    async def create_order(self, request: OrderRequest) -> Order:
        pending = await self._enter("create_order")
        markets = self._markets if self._markets is not None else await self._feed.load_markets()
        self._markets = markets
        market = self._tradable(markets, request.symbol)
        await self._settle()
        ticker = await self._fresh_ticker(request.symbol)
        order = self._accept(request, market, ticker).snapshot()
        self._leave(pending, "create_order")
        return order

    async def cancel_order(self, order_id: str, symbol: str) -> None:
        pending = await self._enter("cancel_order")
        await self._settle()
        record = self._record(order_id, symbol, "cancel_order")
        if record.status is not OrderStatus.OPEN:
            # What real exchanges answer (Binance -2011 "Unknown order sent."): nothing to cancel.
            raise OrderNotFound(
                f"order {order_id} already closed ({record.status.value})",
                venue=self.name,
                call="cancel_order",
            )
        self._finish(record, OrderStatus.CANCELED)
        self._leave(pending, "cancel_order")

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
        """Admit one call; returns an injection to raise once the call has taken effect."""
        self.calls[call] += 1
        if call != "close":
            self._budget.take(call, self.name)
        injection, latency = self._faults.due(call)
        if latency > 0:
            await self._clock.sleep(latency)
        self._expire_dead_man()
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
        self._expire_dead_man()
        now = self._clock.monotonic()
        if not self._open or now - self._refreshed_at < REFRESH_SECONDS:
            return
        self._refreshed_at = now
        symbols = sorted({record.market.symbol for record in self._open.values()})
        try:
            tickers = self._remember(await self._feed.fetch_tickers(symbols))
        except Fault as fault:  # the feed's hiccup is not the account's: match next time
            log.debug(
                "%s %s: price refresh for resting orders failed: %s", self.name, self.account, fault
            )
            return
        self._match(tickers)

    def _match(self, tickers: dict[str, Ticker]) -> None:
        for record in list(self._open.values()):
            ticker = tickers.get(record.market.symbol)
            if ticker is None or record.price is None:
                continue
            if _crosses(record.request.side is Side.BUY, record.price, ticker):
                self._fill(record, record.price, self._fill_share)

    def _expire_dead_man(self) -> None:
        deadline = self._dead_man_deadline
        if deadline is None or self._clock.time() <= deadline:
            return
        self._dead_man_deadline = None
        if self._open:
            log.info("%s %s: cancel-all-after expired, cancelling %d open orders",
                     self.name, self.account, len(self._open))  # fmt: skip
        for record in list(self._open.values()):
            self._finish(record, OrderStatus.CANCELED)

    # -- orders and balances ------------------------------------------------------------------

    def _tradable(self, markets: dict[str, Market], symbol: str) -> Market:
        market = markets.get(symbol)
        if market is None:
            raise self._rejected(f"unknown symbol {symbol}", "create_order")
        if not market.active:
            raise self._rejected(f"market {symbol} is not active", "create_order")
        return market

    def _record(self, order_id: str, symbol: str, call: str) -> _Record:
        record = self._orders.get(order_id)
        if record is None or record.market.symbol != symbol:
            raise OrderNotFound(
                f"order {order_id} ({symbol}) not found", venue=self.name, call=call
            )
        return record

    def _accept(self, request: OrderRequest, market: Market, ticker: Ticker) -> _Record:
        """Validate, then book: no await in here, so concurrent calls cannot interleave."""
        amount, price = self._checked_terms(request, market)
        buy = request.side is Side.BUY
        if price is not None:  # limit: fills at its own price, now or later
            fill_price = price if _crosses(buy, price, ticker) else None
            reference = price
        else:
            fill_price = (
                ticker.ask * (1 + self._slippage) if buy else ticker.bid * (1 - self._slippage)
            )
            reference = fill_price
        cost = amount * reference
        if cost < market.min_cost:
            raise self._rejected(
                f"order cost {cost:.8g} {market.quote} is under the minimum {market.min_cost:g}",
                "create_order",
            )
        need = cost * (1 + self._fee_rate) if buy else amount
        currency = market.quote if buy else market.base
        free = self._free(currency)
        if need > free * (1 + 1e-12) + DUST:
            raise self._rejected(
                f"insufficient funds: need {need:.8g} {currency}, free {free:.8g}", "create_order"
            )
        record = self._book(request, market, amount, price)
        if fill_price is not None:
            self._fill(record, fill_price)
        else:
            record.reserved = need
            self._open[record.id] = record
        return record

    def _checked_terms(self, request: OrderRequest, market: Market) -> tuple[float, float | None]:
        amount = _floor_to(request.amount, market.amount_step)
        if amount <= 0 or amount < market.min_amount * (1 - 1e-9):
            raise self._rejected(
                f"amount {request.amount:.8g} {market.base} is under the minimum "
                f"{market.min_amount:g} (step {market.amount_step})",
                "create_order",
            )
        price: float | None = None
        if request.type is OrderType.LIMIT:
            if request.price is None or request.price <= 0:
                raise self._rejected("a limit order needs a positive price", "create_order")
            price = _round_to(request.price, market.price_step)
        client_id = request.client_order_id
        if client_id and (market.symbol, client_id) in self._by_client:
            raise DuplicateOrder(
                f"duplicate client order id {client_id}", venue=self.name, call="create_order"
            )
        return amount, price

    def _book(
        self, request: OrderRequest, market: Market, amount: float, price: float | None
    ) -> _Record:
        order_id = f"P{self._next_id}"
        self._next_id += 1
        record = _Record(
            id=order_id,
            request=request,
            market=market,
            amount=amount,
            price=price,
            timestamp=self._exchange_clock.time(),  # the exchange stamps with its clock
        )
        self._orders[order_id] = record
        if request.client_order_id:
            self._by_client[(market.symbol, request.client_order_id)] = record
        return record

    def _fill(self, record: _Record, price: float, share: float = 1.0) -> None:
        """Fill `share` of the order's amount, floored to the lot size; all that is left when
        that share is nothing or covers the rest."""
        market = record.market
        left = record.amount - record.filled
        part = _floor_to(record.amount * share, market.amount_step)
        last = part <= DUST or part >= left - DUST
        amount = left if last else part
        cost = amount * price
        fee = cost * self._fee_rate
        buy = record.request.side is Side.BUY
        if buy:
            self._credit(market.quote, -(cost + fee))
            self._credit(market.base, amount)
        else:
            self._credit(market.base, -amount)
            self._credit(market.quote, cost - fee)
        if record.filled and record.average is not None:
            record.average = (record.average * record.filled + price * amount) / (
                record.filled + amount
            )
        else:
            record.average = price
        record.fee_cost += fee
        if last:
            record.filled = record.amount
            self._finish(record, OrderStatus.CLOSED)
            return
        record.filled = _round_to(record.filled + amount, market.amount_step)
        record.reserved -= cost * (1 + self._fee_rate) if buy else amount

    def _finish(self, record: _Record, status: OrderStatus) -> None:
        record.status = status
        record.reserved = 0.0
        self._open.pop(record.id, None)

    def _credit(self, currency: str, delta: float) -> None:
        total = round(self._totals.get(currency, 0.0) + delta, 12)  # no 0.020000000000000004
        self._totals[currency] = 0.0 if abs(total) < DUST * max(1.0, abs(delta)) else total

    def _reserved(self, currency: str) -> float:
        return sum(r.reserved for r in self._open.values() if r.reserve_currency == currency)

    def _free(self, currency: str) -> float:
        return self._totals.get(currency, 0.0) - self._reserved(currency)

    def _balance(self) -> Balance:
        currencies = [c for c, v in self._totals.items() if v > 0 or c == self._quote]
        return Balance(
            free={c: self._free(c) for c in currencies},
            total={c: self._totals.get(c, 0.0) for c in currencies},
        )
