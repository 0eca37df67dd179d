"""The ccxt venue: with its fault translation (trading/venues/ccxt_faults.py) and its websocket
feed (trading/venues/feed.py), the only ccxt code.

`CcxtVenue` is one exchange account over `ccxt.async_support`, implementing the Venue protocol
of `trading/models.py`: it converts ccxt's structures into our dataclasses, and every call goes
through one wrapper that turns any exception into what it means (`exchange_faults.classify`):
a fault of `trading/errors.py`, or `Closed` once we closed the client. Resilience (retries,
circuit breaker, escalation) is not here: it is layered on top of any Venue by
`trading/connector.py`.

Resting stop sells (`stop_types`) go through ccxt's unified `stopLossPrice`, on the exchanges
listed in `_SPOT_STOP_TYPES` only, where ccxt's spot features declare it: binance (STOP_LOSS for
STOP_MARKET, STOP_LOSS_LIMIT with timeInForce GTC for STOP_LIMIT) and binanceus (STOP_LOSS_LIMIT;
Binance.US takes no STOP_LOSS). There a stop is one of the account's open orders, listed,
fetched and cancelled like any other, and ccxt rounds its trigger and amount to the market's
precision. Every other exchange gets none (the engine keeps its own stop check): on OKX, Bybit,
KuCoin, Bitget and Gate ccxt places stops as separate trigger orders that plain open-order reads
do not return, so the sync would not see them; the rest are not checked against their API.

"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import ccxt.async_support as ccxt
from ccxt.base import errors as ce
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from trading.errors import Closed, Fatal, Fault, Rejected
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
    account_label,
)
from trading.venues.ccxt_faults import answering, classify, describe, record_answers

T = TypeVar("T")

# Exchanges whose fetch_order finds an order by our client id (binance: origClientOrderId).
_FETCH_BY_CLIENT_ID = frozenset({"binance", "binanceus"})
# What an exchange puts before our client id when it echoes it back (Gate's text is "t-" + id).
_CLIENT_ID_ECHO_PREFIX = {"gate": "t-"}
# ccxt's coinbase drops the unified clientOrderId param (and sends an id of its own): the
# exchange's own name for it goes through.
_CLIENT_ID_PARAM = {"coinbase": "client_order_id"}
# Exchanges that refuse a private request whose nonce is not above the last one they received
# for the key (Kraken: "EAPI:Invalid nonce"). ccxt numbers requests in the order it signs them,
# but concurrent requests overtake one another on the way (ccxt does not pace Kraken's orders
# and cancels at all), so these get one private request at a time: a hung one holds the others
# until ccxt's timeout.
_NONCE_IN_ORDER = frozenset({"kraken"})
# Exchanges whose answer to a new order tells nothing of its state (Kraken's AddOrder: an id and
# a description): a market order is read back by id at once, so the caller sees its fill.
_READ_BACK_MARKET = frozenset({"kraken"})
# The resting stop types an exchange's spot API takes through ccxt, best first (see above).
_SPOT_STOP_TYPES = {
    "binance": (OrderType.STOP_MARKET, OrderType.STOP_LIMIT),
    "binanceus": (OrderType.STOP_LIMIT,),
}
# What ccxt calls our types; a stop is ccxt's market or limit order with a stopLossPrice.
_CCXT_TYPES = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP_MARKET: "market",
    OrderType.STOP_LIMIT: "limit",
}
# ccxt's order types that trigger like a stop-loss, and whether they then trade at market.
_STOP_KINDS = {
    "stop_loss": True,
    "stop_market": True,
    "stop_loss_limit": False,
    "stop_limit": False,
}
_STATUSES = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}

# ccxt logs every request's headers at DEBUG, API key included: its lines go to a logger of
# ours that never emits DEBUG, whatever LOG_LEVEL says.
_wire_log = logging.getLogger("trading.venues.ccxt_venue.wire")
_wire_log.setLevel(logging.INFO)


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
    ) -> None:
        self.name = exchange_id
        self.account = account
        self.label = account_label(exchange_id, account)
        self.sandbox = sandbox
        self._secrets = tuple(s for s in (api_key, secret, password) if s)
        self.public_only = not (api_key or secret)
        self._markets: dict[str, Market] = {}
        credentials = {"apiKey": api_key, "secret": secret, "password": password}
        try:
            self._exchange = _build(exchange_id, credentials, recv_window_ms, config or {})
            if sandbox:
                self._exchange.set_sandbox_mode(True)
        except Exception as e:
            # No exchange has answered yet: whatever fails here is our configuration.
            raise Fatal(describe(e, self._secrets), venue=self.label, call="connect") from e
        has = self._exchange.has
        self.has_bulk_tickers = bool(has.get("fetchTickers"))
        self.has_cancel_all_after = bool(has.get("cancelAllOrdersAfter")) and not self.public_only
        self.stop_types = () if self.public_only else spot_stop_types(exchange_id)
        self._echo_prefix = _CLIENT_ID_ECHO_PREFIX.get(exchange_id, "")
        self._market_buy_in_quote = market_buy_needs_price(exchange_id)

    def __repr__(self) -> str:
        return f"CcxtVenue({self.label})"

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
            markets = (_market(m, mode) for m in raw.values())
            return {m.symbol: m for m in markets if m is not None}

        self._markets = await self._call("load_markets", run)
        return dict(self._markets)

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        async def run() -> dict[str, Ticker]:
            ex = self._exchange
            if symbols is not None and not symbols:
                return {}
            # Without bulk tickers the scanner names its symbols; asking for all of them is
            # then ccxt's NotSupported, i.e. Fatal.
            if symbols is None or self.has_bulk_tickers:
                raw = await ex.fetch_tickers(list(symbols) if symbols is not None else None)
            else:
                raw = {s: await ex.fetch_ticker(s) for s in symbols}
            tickers = (_ticker(t) for t in raw.values())
            known = self._markets
            return {t.symbol: t for t in tickers if t and (not known or t.symbol in known)}

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
            return _balance(await self._exchange.fetch_balance())

        return await self._call("fetch_balance", run)

    async def fetch_open_orders(self) -> list[Order]:
        async def run() -> list[Order]:
            return [self._parse(o) for o in await self._exchange.fetch_open_orders()]

        return await self._call("fetch_open_orders", run)

    async def fetch_order(self, order_id: str, symbol: str) -> Order:
        async def run() -> Order:
            return self._parse(await self._exchange.fetch_order(order_id, symbol))

        return await self._call("fetch_order", run)

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        async def run() -> Order | None:
            ex = self._exchange
            if ex.id in _FETCH_BY_CLIENT_ID:
                try:
                    raw = await ex.fetch_order(None, symbol, {"clientOrderId": client_order_id})
                except ce.OrderNotFound:
                    return None
                return self._parse(raw)
            for raw in await self._recent_orders(symbol):
                if _client_id(raw, self._echo_prefix) == client_order_id:
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
            if request.type is OrderType.MARKET and self.name in _READ_BACK_MARKET:
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
        params = {_CLIENT_ID_PARAM.get(self.name, "clientOrderId"): request.client_order_id}
        if request.type.is_stop:
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
        return _order(raw, request, echo_prefix=self._echo_prefix)

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
            await self._exchange.close()
        except Exception as e:
            raise classify(e, self.label, "close", dialect=self.name, secrets=self._secrets) from e


def _build(
    exchange_id: str, credentials: dict, recv_window_ms: int, config: dict, library: Any = ccxt
) -> Any:
    """A ccxt client of `library` (ccxt.async_support; ccxt.pro for the websocket feed)."""
    settings = ccxt.Exchange.deep_extend(
        {
            **{k: v for k, v in credentials.items() if v},
            "options": {"adjustForTimeDifference": True},
            "logger": _wire_log,
        },
        config,
    )
    settings["enableRateLimit"] = True  # always: ccxt's limiter paces each exchange
    exchange = getattr(library, exchange_id)(settings)
    record_answers(exchange)
    if exchange_id in _NONCE_IN_ORDER:
        _one_private_request_at_a_time(exchange)
    _spot_only(exchange.options, recv_window_ms, config.get("options", {}))
    return exchange


def _one_private_request_at_a_time(exchange: Any) -> None:
    """Private requests wait for the previous one's answer before they are signed, so they
    reach the exchange in nonce order; public ones are not held."""
    fetch2 = exchange.fetch2
    turn = asyncio.Lock()

    async def in_turn(path: str, api: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        if api[0] != "private":  # ccxt's api section, as its sign() reads it
            return await fetch2(path, api, *args, **kwargs)
        async with turn:
            return await fetch2(path, api, *args, **kwargs)

    exchange.fetch2 = in_turn


def _spot_only(options: dict, recv_window_ms: int, explicit: Mapping[str, Any]) -> None:
    """Tune ccxt's options for a spot bot, where the exchange has them and the caller's config
    did not set them: load spot markets only, one open-orders call for every symbol."""
    wanted: dict[str, Any] = {"recvWindow": recv_window_ms, "defaultType": "spot"}
    if isinstance(options.get("fetchOpenOrders"), dict):
        wanted["fetchOpenOrders"] = {**options["fetchOpenOrders"], "warnWithoutSymbol": False}
    if isinstance(options.get("fetchMarkets"), dict) and "types" in options["fetchMarkets"]:
        wanted["fetchMarkets"] = {**options["fetchMarkets"], "types": ["spot"]}
    for flag in ("fetchCurrencies", "fetchMargins"):  # bools here; dicts elsewhere are settings
        if isinstance(options.get(flag), bool):
            wanted[flag] = False
    for key, value in wanted.items():
        if key in options and key not in explicit:
            options[key] = value


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _step(precision: Any, mode: int) -> float | None:
    if precision is None:
        return None
    if mode == TICK_SIZE:
        return float(precision)
    if mode == DECIMAL_PLACES:
        return 10.0 ** -int(precision)
    return None  # SIGNIFICANT_DIGITS: the step depends on the price


def _market(raw: dict, mode: int) -> Market | None:
    if not raw.get("spot"):
        return None
    limits, precision = raw.get("limits") or {}, raw.get("precision") or {}
    return Market(
        symbol=raw["symbol"],
        base=raw["base"],
        quote=raw["quote"],
        active=raw.get("active") is not False,  # None: the exchange does not say
        spot=True,
        min_amount=_num((limits.get("amount") or {}).get("min")) or 0.0,
        min_cost=_num((limits.get("cost") or {}).get("min")) or 0.0,
        amount_step=_step(precision.get("amount"), mode),
        price_step=_step(precision.get("price"), mode),
    )


def _ticker(raw: dict) -> Ticker | None:
    last = _num(raw.get("last")) or _num(raw.get("close"))
    if not last:
        return None  # no price, nothing to trade on
    quote_volume = _num(raw.get("quoteVolume"))
    if quote_volume is None:
        quote_volume = (_num(raw.get("baseVolume")) or 0.0) * last
    timestamp = raw.get("timestamp")
    return Ticker(
        symbol=raw["symbol"],
        last=last,
        bid=_num(raw.get("bid")) or last,
        ask=_num(raw.get("ask")) or last,
        quote_volume=quote_volume,
        change_pct=_num(raw.get("percentage")) or 0.0,
        timestamp=timestamp / 1000 if timestamp else time.time(),
    )


def _balance(raw: Mapping[str, Any]) -> Balance:
    return Balance(free=_amounts(raw.get("free")), total=_amounts(raw.get("total")))


def _amounts(raw: Mapping[str, Any] | None) -> dict[str, float]:
    return {c: float(v) for c, v in (raw or {}).items() if v is not None}


def _client_id(raw: Mapping[str, Any], echo_prefix: str = "") -> str | None:
    """The client order id as we sent it, without what the exchange added in front."""
    value = raw.get("clientOrderId")
    if value and echo_prefix and value.startswith(echo_prefix):
        return value[len(echo_prefix) :]
    return value or None


def _order(raw: dict, request: OrderRequest | None = None, *, echo_prefix: str = "") -> Order:
    """ccxt's order, with what the exchange did not echo back taken from our request."""
    if raw.get("id") is None:
        raise ValueError("the exchange answered without an order id")
    fee = raw.get("fee") or next(iter(raw.get("fees") or []), None) or {}
    side = raw.get("side") or (request.side.value if request else None)
    kind, stop_price = _order_type(raw, request)
    amount = _num(raw.get("amount"))
    return Order(
        id=str(raw["id"]),
        symbol=raw.get("symbol") or (request.symbol if request else ""),
        side=Side(side),
        type=kind,
        amount=amount if amount is not None else (request.amount if request else 0.0),
        filled=_num(raw.get("filled")) or 0.0,
        # Unknown ("canceling", None) counts as live: the bot checks again before trusting it.
        status=_STATUSES.get(raw.get("status") or "", OrderStatus.OPEN),
        timestamp=raw["timestamp"] / 1000 if raw.get("timestamp") else time.time(),
        client_order_id=_client_id(raw, echo_prefix)
        or (request.client_order_id if request else None),
        price=_num(raw.get("price")) or (request.price if request else None),
        stop_price=stop_price,
        average=_num(raw.get("average")),
        fee_cost=_num(fee.get("cost")) or 0.0,
        fee_currency=fee.get("currency"),
    )


def _order_type(raw: dict, request: OrderRequest | None) -> tuple[OrderType, float | None]:
    """Our type and stop price for ccxt's order. ccxt reports binance's STOP_LOSS_LIMIT as a
    "limit" with a triggerPrice; a take-profit (never ours) stays a plain limit or market."""
    if not raw.get("type") and request is not None:
        return request.type, request.stop_price
    kind = str(raw.get("type") or "limit").lower()
    trigger = _num(raw.get("triggerPrice")) or _num(raw.get("stopLossPrice"))
    if raw.get("takeProfitPrice") is None and (trigger is not None or kind in _STOP_KINDS):
        at_market = _STOP_KINDS.get(kind, kind == "market")
        if trigger is None and request is not None:
            trigger = request.stop_price
        return (OrderType.STOP_MARKET if at_market else OrderType.STOP_LIMIT), trigger
    if request is not None and request.type.is_stop:  # the exchange accepted what we sent
        return request.type, request.stop_price
    return (OrderType.MARKET if kind == "market" else OrderType.LIMIT), None


def known_exchange_ids() -> frozenset[str]:
    return frozenset(ccxt.exchanges)


@functools.cache
def _metadata(exchange_id: str) -> tuple[frozenset[str], bool, bool]:
    inst = getattr(ccxt, exchange_id)()
    required = frozenset(k for k, v in inst.requiredCredentials.items() if v)
    has_testnet = bool(inst.urls.get("test"))
    return required, has_testnet, bool(inst.has.get("cancelAllOrdersAfter"))


@functools.cache
def market_buy_needs_price(exchange_id: str) -> bool:
    """Whether ccxt sizes this exchange's market buys in quote, as amount * price (its option
    createMarketBuyOrderRequiresPrice: Coinbase, Gate, Bitget, HTX...). Read from ccxt's
    defaults, not from the account's config: the bot's amounts are always in base. Where the
    option is not declared, the exchange's declared features decide."""
    inst = getattr(ccxt, exchange_id)()
    value = inst.handle_option("createOrder", "createMarketBuyOrderRequiresPrice", None)
    if value is None:
        spot = (inst.features or {}).get("spot") or {}
        value = (spot.get("createOrder") or {}).get("marketBuyRequiresPrice")
    return bool(value)


@functools.cache
def spot_stop_types(exchange_id: str) -> tuple[OrderType, ...]:
    """The resting stop types placed on this exchange's spot markets, best first: those of
    `_SPOT_STOP_TYPES`, if ccxt's spot features still declare stopLossPrice."""
    spot = (getattr(ccxt, exchange_id)().features or {}).get("spot") or {}
    if not (spot.get("createOrder") or {}).get("stopLossPrice"):
        return ()
    return _SPOT_STOP_TYPES.get(exchange_id, ())


def required_credentials(exchange_id: str) -> frozenset[str]:
    """ccxt's names of the credentials this exchange needs: apiKey, secret, password, ..."""
    return _metadata(exchange_id)[0]


def supports_sandbox(exchange_id: str) -> bool:
    """Whether ccxt has testnet URLs (set_sandbox_mode raises TypeError for kraken, coinbase)."""
    return _metadata(exchange_id)[1]


def supports_cancel_all_after(exchange_id: str) -> bool:
    """Whether ccxt offers this exchange's dead man's switch (cancelAllOrdersAfter)."""
    return _metadata(exchange_id)[2]
