"""The terms the paper exchange reads from an order request, checked as a real exchange checks
them: the amount floored to the lot size and at least the market's minimum, prices rounded to
the tick, a limit's price and a stop's trigger present and positive, a stop sell refused when it
would trigger at once (as Binance refuses it: "Stop price would trigger immediately"), an OCO's
limit above its stop, and buy stops refused (the bot is long-only).

Apart from the book (trading/venues/paper_orders.py) because these checks read only the request,
its market and the ticker, never the account; the book then checks the funds, the client order
id and the minimum cost, and books the order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading.errors import Rejected
from trading.models import Market, OrderRequest, OrderType, Side, Ticker


@dataclass(frozen=True, slots=True)
class Terms:
    amount: float
    price: float | None  # the limit
    stop_price: float | None


def _step_digits(step: float) -> int:
    return max(0, -math.floor(math.log10(step))) + 6


def floor_to(value: float, step: float | None) -> float:
    if not step:
        return value
    return round(math.floor(value / step + 1e-9) * step, _step_digits(step))


def round_to(value: float, step: float | None) -> float:
    if not step:
        return value
    return round(round(value / step) * step, _step_digits(step))


def checked_terms(request: OrderRequest, market: Market, ticker: Ticker, *, venue: str) -> Terms:
    """The request's amount, limit and trigger on the market's steps, or Rejected."""
    amount = floor_to(request.amount, market.amount_step)
    if amount <= 0 or amount < market.min_amount * (1 - 1e-9):
        raise _rejected(
            venue,
            f"amount {request.amount:.8g} {market.base} is under the minimum "
            f"{market.min_amount:g} (step {market.amount_step})",
        )
    price: float | None = None
    if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.OCO):
        if request.price is None or request.price <= 0:
            raise _rejected(venue, f"a {request.type.value} order needs a positive price")
        price = round_to(request.price, market.price_step)
    stop_price = _checked_stop(request, market, ticker, venue)
    oco = request.type is OrderType.OCO
    if oco and price is not None and stop_price is not None and price <= stop_price:
        raise _rejected(venue, f"an oco's limit {price:.8g} must be above its stop")
    return Terms(amount, price, stop_price)


def _checked_stop(
    request: OrderRequest, market: Market, ticker: Ticker, venue: str
) -> float | None:
    if not (request.type.is_stop or request.type is OrderType.OCO):
        return None
    if request.side is not Side.SELL:
        raise _rejected(venue, "stop orders are sell-only here (spot, long-only)")
    if request.stop_price is None or request.stop_price <= 0:
        raise _rejected(venue, f"a {request.type.value} order needs a positive stop price")
    stop_price = round_to(request.stop_price, market.price_step)
    if ticker.last <= stop_price:
        raise _rejected(
            venue,
            f"stop price would trigger immediately: {stop_price:.8g} at or above the last "
            f"price {ticker.last:.8g}",
        )
    return stop_price


def _rejected(venue: str, message: str) -> Rejected:
    return Rejected(message, venue=venue, call="create_order")
