"""How an order goes out, beside what the risk gate decides: its type and prices."""

from __future__ import annotations

from dataclasses import dataclass

from trading.models import OrderType


@dataclass(frozen=True)
class Terms:
    """How an order goes out, beside what the gate decides (the intent)."""

    kind: OrderType
    limit_price: float | None
    stop_price: float | None
    reason: str
    stop_loss: float | None
    take_profit: float | None
    settle_later: bool


def order_type(limit_price: float | None, stop_price: float | None, oco: bool) -> OrderType:
    if oco and limit_price is not None and stop_price is not None:
        return OrderType.OCO
    if stop_price is not None:
        return OrderType.STOP_MARKET if limit_price is None else OrderType.STOP_LIMIT
    return OrderType.MARKET if limit_price is None else OrderType.LIMIT
