"""The ccxt venue: with its fault translation (trading/venues/ccxt_faults.py), the only ccxt code.

`CcxtVenue` is one exchange account over `ccxt.async_support`, implementing the Venue protocol
of `trading/models.py`: every call goes through one wrapper that turns any exception into what
it means (`ccxt_faults.classify`): a fault of `trading/errors.py`, or `Closed` once we closed the
client. Resilience (retries, circuit breaker, escalation) is not here: it is layered on top of
any Venue by `trading/connector.py`.

Beside it: `ccxt_exchanges.py` (what differs between exchanges, the client built for an account,
which exchanges get resting stop sells) and `ccxt_parse.py` (ccxt's structures read into our
dataclasses).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ccxt.base import errors as ce

from trading.clock import Clock, RealClock
from trading.cycle_pace import Pace
from trading.errors import Closed, Fatal, Fault, Rejected
from trading.models import (
    Balance,
    Candle,
    Deliver,
    Market,
    Order,
    OrderRequest,
    OrderType,
    Side,
    Ticker,
    account_label,
)
from trading.venues.ccxt_bulk import BulkTickers
from trading.venues.ccxt_exchanges import (
    CLIENT_ID_ECHO_PREFIX,
    CLIENT_ID_PARAM,
    FETCH_BY_CLIENT_ID,
    ORDERS_PER_READ,
    READ_BACK_MARKET,
    build,
    market_buy_needs_price,
    pacer_of,
    request_pace,
    spot_stop_types,
)
from trading.venues.ccxt_faults import answering, classify, describe
from trading.venues.ccxt_parse import (
    client_id,
    to_balance,
    to_market,
    to_order,
    to_tickers,
)
from trading.venues.feed import VenueFeed, open_venue_feed

T = TypeVar("T")

# What ccxt calls our types; a stop is ccxt's market or limit order with a stopLossPrice.
_CCXT_TYPES = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP_MARKET: "market",
    OrderType.STOP_LIMIT: "limit",
}


class CcxtVenue:
    """One exchange account over ccxt. Without credentials it is public-only (market data):
    the live feed of the paper exchange in DRY_RUN."""

    def __init__(
        self,
        exchange_id: str,
        account: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        sandbox: bool = False,
        recv_window_ms: int = 10_000,
        config: dict | None = None,
        feed_silence_limit: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.name = exchange_id
        self.account = account
        self.label = account_label(exchange_id, account)
        self.sandbox = sandbox
        self._secrets = tuple(s for s in (api_key, secret, password) if s)
        self.public_only = not (api_key or secret)
        self._markets: dict[str, Market] = {}
        credentials = {"apiKey": api_key, "secret": secret, "password": password}
        self._feed_settings = {
            "api_key": api_key,
            "secret": secret,
            "password": password,
            "sandbox": sandbox,
            "recv_window_ms": recv_window_ms,
            "config": config,
            "silence_limit": feed_silence_limit,
        }
        try:
            self._exchange = build(
                exchange_id, credentials, recv_window_ms, config or {}, clock=clock
            )
            if sandbox:
                self._exchange.set_sandbox_mode(True)
        except Exception as e:
            # No exchange has answered yet: whatever fails here is our configuration.
            raise Fatal(describe(e, self._secrets), venue=self.label, call="connect") from e
        has = self._exchange.has
        self.has_bulk_tickers = bool(has.get("fetchTickers"))
        # A worker thread runs on real time: a venue on simulated time keeps its reads on its
        # loop, or that loop would jump its clock while the worker parses.
        real_time = clock is None or isinstance(clock, RealClock)
        self._bulk = BulkTickers(self._exchange, self._public_twin) if real_time else None
        self.has_cancel_all_after = bool(has.get("cancelAllOrdersAfter")) and not self.public_only
        self.stop_types = () if self.public_only else spot_stop_types(exchange_id)
        self._echo_prefix = CLIENT_ID_ECHO_PREFIX.get(exchange_id, "")
        self._market_buy_in_quote = market_buy_needs_price(exchange_id)
        paced = request_pace(exchange_id, self._exchange)
        self.pace = Pace(*paced) if paced else None  # sizes the cycle (trading/cycle_pace.py)
        self.orders_per_read = ORDERS_PER_READ.get(exchange_id, 1)  # by id, with fetch_orders

    def _public_twin(self) -> Any:
        """A public-only client of this exchange and settings, for the bulk reads."""
        settings = self._feed_settings
        twin = build(self.name, {}, settings["recv_window_ms"], settings["config"] or {})
        if self.sandbox:
            twin.set_sandbox_mode(True)
        return twin

    def __repr__(self) -> str:
        return f"CcxtVenue({self.label})"

    def open_feed(self, deliver: Deliver) -> VenueFeed | None:
        """The account's websockets where ccxt.pro has them (trading/venues/feed.py), on this
        client's pace and markets."""
        if self.public_only:
            return None
        shared = {"pacer": pacer_of(self._exchange), "source": self._exchange}
        return open_venue_feed(self.name, self.account, deliver, **self._feed_settings, **shared)

    async def _call(self, call: str, action: Callable[[], Awaitable[T]]) -> T:
        """Every ccxt call goes through here: the one place faults are translated."""
        with answering() as answer:
            try:
                return await action()
            except Fault:
                raise
            except Exception as e:
                if getattr(self._exchange, "closed_by_user", False):
                    # We closed the client (a shutdown) before or while this call ran.
                    raise Closed(describe(e, self._secrets), venue=self.label, call=call) from e
                raise classify(
                    e, self.label, call, dialect=self.name, answer=answer, secrets=self._secrets
                ) from e

    async def load_markets(self) -> dict[str, Market]:
        async def run() -> dict[str, Market]:
            raw = await self._exchange.load_markets(reload=True)
            mode = self._exchange.precisionMode
            markets = (to_market(m, mode) for m in raw.values())
            return {m.symbol: m for m in markets if m is not None}

        self._markets = await self._call("load_markets", run)
        return dict(self._markets)

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        async def run() -> dict[str, Ticker]:
            ex = self._exchange
            if symbols is not None and not symbols:
                return {}
            if symbols is None and self.has_bulk_tickers and self._bulk is not None:
                # The whole market: decoded and parsed off the loop (ccxt_bulk.py).
                return await self._bulk.read(self._markets)
            # Without bulk tickers the scanner names its symbols; asking for all of them is
            # then ccxt's NotSupported, i.e. Fatal.
            if symbols is None or self.has_bulk_tickers:
                raw = await ex.fetch_tickers(list(symbols) if symbols is not None else None)
            else:
                raw = {s: await ex.fetch_ticker(s) for s in symbols}
            return to_tickers(raw.values(), self._markets)

        return await self._call("fetch_tickers", run)

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        async def run() -> list[Candle]:
            rows = await self._exchange.fetch_ohlcv(symbol, timeframe, limit=limit)
            return [
                Candle(r[0] / 1000, *map(float, r[1:6]))
                for r in rows
                if len(r) >= 6 and None not in r[:6]
            ]

        return await self._call("fetch_ohlcv", run)

    async def fetch_balance(self) -> Balance:
        async def run() -> Balance:
            return to_balance(await self._exchange.fetch_balance())

        return await self._call("fetch_balance", run)

    async def fetch_open_orders(self) -> list[Order]:
        async def run() -> list[Order]:
            return [self._parse(o) for o in await self._exchange.fetch_open_orders()]

        return await self._call("fetch_open_orders", run)

    async def fetch_order(self, order_id: str, symbol: str) -> Order:
        async def run() -> Order:
            return self._parse(await self._exchange.fetch_order(order_id, symbol))

        return await self._call("fetch_order", run)

    async def fetch_orders(self, order_ids: Sequence[str]) -> list[Order]:
        """Up to `orders_per_read` orders by id, in one request."""

        async def run() -> list[Order]:
            raw = await self._exchange.fetch_orders_by_ids(list(order_ids))
            return [self._parse(o) for o in raw]

        return await self._call("fetch_orders", run)

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        async def run() -> Order | None:
            ex = self._exchange
            if ex.id in FETCH_BY_CLIENT_ID:
                try:
                    raw = await ex.fetch_order(None, symbol, {"clientOrderId": client_order_id})
                except ce.OrderNotFound:
                    return None
                return self._parse(raw)
            for raw in await self._recent_orders(symbol):
                if client_id(raw, self._echo_prefix) == client_order_id:
                    return self._parse(raw)
            return None

        return await self._call("find_order", run)

    async def _recent_orders(self, symbol: str) -> list[dict]:
        ex = self._exchange
        orders = list(await ex.fetch_open_orders(symbol))
        if ex.has.get("fetchClosedOrders"):
            orders += await ex.fetch_closed_orders(symbol, limit=100)
        elif ex.has.get("fetchOrders"):
            orders += await ex.fetch_orders(symbol, limit=100)
        return orders

    async def create_order(self, request: OrderRequest) -> Order:
        async def run() -> Order:
            price, params = self._price_and_params(request)
            raw = await self._exchange.create_order(
                request.symbol,
                _CCXT_TYPES[request.type],
                request.side.value,
                request.amount,
                price,
                params,
            )
            if (
                request.type is OrderType.MARKET
                and self.name in READ_BACK_MARKET
                and not request.settle_later
            ):
                raw = await self._read_back(raw)
            return self._parse(raw, request)

        return await self._call("create_order", run)

    async def _read_back(self, raw: dict) -> dict:
        """The new order as the exchange holds it now, or its create answer when that read
        fails: the order was placed, and a failed read must never make it look unsent."""
        if raw.get("status") is not None or raw.get("id") is None:
            return raw
        try:
            held = await self._exchange.fetch_order(str(raw["id"]), raw.get("symbol"))
        except Exception:
            return raw  # the reconciliation reads it later
        return held if str(held.get("id")) == str(raw["id"]) else raw

    def _price_and_params(self, request: OrderRequest) -> tuple[float | None, dict[str, Any]]:
        """ccxt's price argument and params for an order. A market order gets no price, except a
        market buy where the exchange spends quote (ccxt's createMarketBuyOrderRequiresPrice):
        there ccxt's documented way is the price, and it spends amount * price. Nowhere else: on
        some exchanges a price on a market order changes what it does."""
        params = {CLIENT_ID_PARAM.get(self.name, "clientOrderId"): request.client_order_id}
        if request.type.is_stop or request.type is OrderType.OCO:  # an OCO: refused there
            return self._stop_terms(request), {**params, "stopLossPrice": request.stop_price}
        if request.type is OrderType.LIMIT:
            return request.price, params
        if request.side is Side.BUY and self._market_buy_in_quote:
            if request.reference_price is None or request.reference_price <= 0:
                raise Rejected(
                    f"a market buy on {self.name} is sized in quote: it needs a reference price",
                    venue=self.label,
                    call="create_order",
                )
            return request.reference_price, params
        return None, params

    def _stop_terms(self, request: OrderRequest) -> float | None:
        """The price argument of a stop (its limit), once it is known this venue places it: on
        an exchange not checked, ccxt could place a trigger order the sync never sees."""
        problem = None
        if request.type not in self.stop_types:
            problem = f"{self.name} takes no {request.type.value} orders here"
        elif request.stop_price is None or request.stop_price <= 0:
            problem = f"a {request.type.value} order needs a positive stop price"
        elif request.type is OrderType.STOP_LIMIT and not (request.price and request.price > 0):
            problem = "a stop_limit order needs a positive price"
        if problem is not None:
            raise Rejected(problem, venue=self.label, call="create_order")
        return request.price if request.type is OrderType.STOP_LIMIT else None

    def _parse(self, raw: dict, request: OrderRequest | None = None) -> Order:
        return to_order(raw, request, echo_prefix=self._echo_prefix)

    async def cancel_order(self, order_id: str, symbol: str) -> Order | None:
        """The order's final state when the exchange's answer says it (Binance answers with
        the cancelled order: status and executed amount), else None."""

        async def run() -> dict | None:
            return await self._exchange.cancel_order(order_id, symbol)

        raw = await self._call("cancel_order", run)
        if not isinstance(raw, dict) or str(raw.get("id")) != str(order_id):
            return None
        if raw.get("status") not in ("canceled", "closed") or raw.get("filled") is None:
            return None  # an answer that does not tell how much filled: look it up
        return self._parse(raw)

    async def cancel_all_after(self, timeout_seconds: float) -> None:
        async def run() -> None:
            await self._exchange.cancel_all_orders_after(int(timeout_seconds * 1000))

        await self._call("cancel_all_after", run)

    async def sync_time(self) -> float:
        async def run() -> float:
            if self._exchange.has.get("fetchTime"):
                await self._exchange.load_time_difference()
            return self.clock_offset_ms

        return await self._call("sync_time", run)

    def market_time(self) -> float:
        """The exchange's time: ours corrected by the measured offset."""
        return time.time() + self.clock_offset_ms / 1000.0

    @property
    def clock_offset_ms(self) -> float:
        """Exchange clock minus ours; ccxt's timeDifference is the opposite (ours - theirs)."""
        return -float(self._exchange.options.get("timeDifference") or 0)

    async def close(self) -> None:
        """Close the client; calls still running or made later end as `Closed`."""
        try:
            try:
                await self._exchange.close()
            finally:
                if self._bulk is not None:
                    await self._bulk.close()
        except Exception as e:
            raise classify(e, self.label, "close", dialect=self.name, secrets=self._secrets) from e
