"""What differs between exchanges behind ccxt: our per-exchange tables, what ccxt itself declares
of each exchange, and the ccxt client built and tuned for one account.

Resting stop sells go through ccxt's unified `stopLossPrice`, on the exchanges listed in
`_SPOT_STOP_TYPES` only, where ccxt's spot features declare it: binance (STOP_LOSS for
STOP_MARKET, STOP_LOSS_LIMIT with timeInForce GTC for STOP_LIMIT) and binanceus (STOP_LOSS_LIMIT;
Binance.US takes no STOP_LOSS). There a stop is one of the account's open orders, listed,
fetched and cancelled like any other, and ccxt rounds its trigger and amount to the market's
precision. Every other exchange gets none (the engine keeps its own stop check): on OKX, Bybit,
KuCoin, Bitget and Gate ccxt places stops as separate trigger orders that plain open-order reads
do not return, so the sync would not see them; the rest are not checked against their API.

Apart from the venue's calls (trading/venues/ccxt_venue.py) because the configuration reads these
too (`known_exchange_ids`, `required_credentials`, `supports_sandbox`, ...) without any account,
and because each exchange's quirk is written down once, here, with its reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import ccxt.async_support as ccxt

from trading.clock import Clock, RealClock
from trading.models import OrderType
from trading.pacing import Pacer
from trading.venues.ccxt_faults import record_answers

# Exchanges whose fetch_order finds an order by our client id (binance: origClientOrderId).
FETCH_BY_CLIENT_ID = frozenset({"binance", "binanceus"})
# What an exchange puts before our client id when it echoes it back (Gate's text is "t-" + id).
CLIENT_ID_ECHO_PREFIX = {"gate": "t-"}
# ccxt's coinbase drops the unified clientOrderId param (and sends an id of its own): the
# exchange's own name for it goes through.
CLIENT_ID_PARAM = {"coinbase": "client_order_id"}
# Exchanges that refuse a private request whose nonce is not above the last one they received
# for the key (Kraken: "EAPI:Invalid nonce"). ccxt numbers requests in the order it signs them,
# but concurrent requests overtake one another on the way (ccxt does not pace Kraken's orders
# and cancels at all), so these get one private request at a time: a hung one holds the others
# until ccxt's timeout.
_NONCE_IN_ORDER = frozenset({"kraken"})
# Exchanges whose answer to a new order tells nothing of its state (Kraken's AddOrder: an id and
# a description): a market order is read back by id at once, so the caller sees its fill.
READ_BACK_MARKET = frozenset({"kraken"})
# Exchanges that read many orders by id in one request, and how many at most (Kraken's
# QueryOrders: 20 txids), so orders that left the open list are settled by one read, not each.
ORDERS_PER_READ = {"kraken": 20}
# What a candle read and a private read (open orders, the balance) cost in ccxt's limiter where
# it is not 1 (ccxt's kraken: OHLC 1.2, OpenOrders and BalanceEx 3), to size a cycle's scan.
_READ_COSTS = {"kraken": (1.2, 3.0)}
# The resting stop types an exchange's spot API takes through ccxt, best first (see above).
_SPOT_STOP_TYPES = {
    "binance": (OrderType.STOP_MARKET, OrderType.STOP_LIMIT),
    "binanceus": (OrderType.STOP_LIMIT,),
}

# ccxt logs every request's headers at DEBUG, API key included: its lines go to a logger of
# ours that never emits DEBUG, whatever LOG_LEVEL says.
_wire_log = logging.getLogger("trading.venues.ccxt_venue.wire")
_wire_log.setLevel(logging.INFO)


# A private request of a nonce-ordered exchange already waited its turn before its signing turn.
_paced: ContextVar[bool] = ContextVar("ccxt_request_paced", default=False)


def build(
    exchange_id: str,
    credentials: dict,
    recv_window_ms: int,
    config: dict,
    library: Any = ccxt,
    clock: Clock | None = None,
    pacer: Pacer | None = None,
) -> Any:
    """The ccxt client of one account (of `library`: ccxt.async_support, or ccxt.pro for the
    websocket feed): paced at ccxt's rate and costs, exits first (trading/pacing.py), its
    answers recorded for the fault translation, spot only, and private requests in nonce order
    where the exchange needs it. `pacer`: an account's pace it shares with another client of
    the same account (the feed's with the venue's; see `pacer_of`)."""
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
    pacer = _priority_pacing(exchange, clock or RealClock(), pacer)
    if exchange_id in _NONCE_IN_ORDER:
        _one_private_request_at_a_time(exchange, pacer)
    _spot_only(exchange.options, recv_window_ms, config.get("options", {}))
    return exchange


def _priority_pacing(exchange: Any, clock: Clock, shared: Pacer | None) -> Pacer | None:
    """ccxt's own pace and costs, but the most urgent request first (ccxt's Throttler serves
    in arrival order). Where ccxt paces by a rolling window instead, its Throttler stays."""
    bucket = exchange.tokenBucket or {}
    if bucket.get("algorithm", "leakyBucket") != "leakyBucket" or not bucket.get("refillRate"):
        return None
    pacer = shared or Pacer(
        clock,
        per_second=float(bucket["refillRate"]) * 1000.0,  # ccxt refills per millisecond
        capacity=float(bucket.get("capacity", 1)),
    )
    exchange.throttle = _Throttle(pacer, float(bucket.get("cost", 1)))
    return pacer


class _Throttle:
    """ccxt's `throttle(cost)` on our Pacer."""

    def __init__(self, pacer: Pacer, default_cost: float) -> None:
        self.pacer = pacer
        self._default_cost = default_cost

    async def __call__(self, cost: float | None = None) -> None:
        if not _paced.get():
            await self.pacer.turn(self._default_cost if cost is None else float(cost))


def pacer_of(exchange: Any) -> Pacer | None:
    """The pace a client built here keeps, to share with another client of the account."""
    throttle = getattr(exchange, "throttle", None)
    return throttle.pacer if isinstance(throttle, _Throttle) else None


def _one_private_request_at_a_time(exchange: Any, pacer: Pacer | None) -> None:
    """Private requests wait for the previous one's answer before they are signed, so they
    reach the exchange in nonce order; public ones are not held. A request waits for its pace
    before its signing turn, so one queued behind the pace never holds the turn from a more
    urgent one."""
    fetch2 = exchange.fetch2
    turn = asyncio.Lock()

    async def in_turn(
        path: str, api: Any = ("public",), method: str = "GET", params: Any = None,
        config: Any = None,
    ) -> Any:  # fmt: skip
        params, config = params if params is not None else {}, config or {}
        if api[0] != "private":  # ccxt's api section, as its sign() reads it
            return await fetch2(path, api, method, params, config)
        if pacer is not None:
            cost = exchange.calculate_rate_limiter_cost(api, method, path, params, config)
            await pacer.turn(cost)
        async with turn:
            token = _paced.set(True)
            try:
                return await fetch2(path, api, method, params, config)
            finally:
                _paced.reset(token)

    exchange.fetch2 = in_turn


def request_pace(exchange_id: str, exchange: Any) -> tuple[float, float] | None:
    """Seconds a candle read and a private read hold this client's pace, or None when ccxt
    does not pace it by a leaky bucket."""
    bucket = exchange.tokenBucket or {}
    if bucket.get("algorithm", "leakyBucket") != "leakyBucket" or not bucket.get("refillRate"):
        return None
    per_second = float(bucket["refillRate"]) * 1000.0
    read, private = _READ_COSTS.get(exchange_id, (1.0, 1.0))
    return read / per_second, private / per_second


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
