"""ccxt's unified structures read into our dataclasses: markets, tickers, balances and orders.

Pure functions of what ccxt returned (and, for an order, of the request that made it, for what
the exchange did not echo back). Apart from the venue's calls (trading/venues/ccxt_venue.py)
because reading an answer is where the exchanges' differences in wording land (a stop reported
as a "limit" with a trigger price, a status ccxt does not name, an id echoed with a prefix), and
reading needs no client: nothing here touches the network.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from trading.models import (
    Balance,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)

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


def to_market(raw: dict, mode: int) -> Market | None:
    """A spot market (None for any other kind); `mode` is the exchange's precisionMode."""
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


def to_ticker(raw: dict) -> Ticker | None:
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


def to_tickers(raw: Iterable[dict], known: Mapping[str, Market]) -> dict[str, Ticker]:
    """ccxt's tickers by symbol, those with a price, of the `known` markets (all if none)."""
    tickers = (to_ticker(t) for t in raw)
    return {t.symbol: t for t in tickers if t and (not known or t.symbol in known)}


def to_amounts(raw: Mapping[str, Any] | None) -> dict[str, float]:
    return {c: float(v) for c, v in (raw or {}).items() if v is not None}


def to_balance(raw: Mapping[str, Any]) -> Balance:
    return Balance(free=to_amounts(raw.get("free")), total=to_amounts(raw.get("total")))


def client_id(raw: Mapping[str, Any], echo_prefix: str = "") -> str | None:
    """The client order id as we sent it, without what the exchange added in front."""
    value = raw.get("clientOrderId")
    if value and echo_prefix and value.startswith(echo_prefix):
        return value[len(echo_prefix) :]
    return value or None


def to_order(raw: dict, request: OrderRequest | None = None, *, echo_prefix: str = "") -> Order:
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
        client_order_id=client_id(raw, echo_prefix)
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
