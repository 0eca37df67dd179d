"""What the store remembers, as the frozen values read from its tables (trading/store_schema.py):
orders with their purpose, closed trades, bans, equity snapshots and the audit log.
trading/store.py reads and writes them, and is where the rest of the code imports them from."""

from __future__ import annotations

from dataclasses import dataclass

from trading.models import Order, OrderStatus, OrderType, Side


@dataclass(frozen=True)
class StoredOrder:
    """An order as last seen, with why the bot placed it."""

    account: str
    order: Order
    purpose: str  # entry | exit | stop | kill | manual | failsafe
    updated_at: float


@dataclass(frozen=True)
class ClosedTrade:
    """A finished round trip: bought, then sold."""

    account: str
    symbol: str
    amount: float
    entry_price: float
    exit_price: float
    opened_at: float
    closed_at: float
    pnl: float  # in quote, after fees
    fees: float  # in quote
    reason: str  # "take-profit", "stop-loss", "kill", "1h trend turned down", ...


@dataclass(frozen=True)
class Ban:
    """A symbol the trader must never enter; `auto` when the loop guard set it."""

    symbol: str
    reason: str
    at: float
    auto: bool = False


@dataclass(frozen=True)
class EquityPoint:
    """One equity snapshot; exposure is the fraction of equity held in positions."""

    account: str
    at: float
    equity: float
    exposure: float


@dataclass(frozen=True)
class EquityCurve:
    """An account's equity over a window, thinned for drawing. `points` (oldest first) holds the
    window's first snapshot, then the last snapshot of each equal time bucket, so the newest is
    always there; `count`, `low` and `high` describe every snapshot in the window, thinned or
    not. A spike shorter than a bucket is missing from `points` but counted in low/high."""

    account: str
    points: tuple[EquityPoint, ...]
    count: int
    low: float | None  # None when the window is empty
    high: float | None


@dataclass(frozen=True)
class AuditEntry:
    """One command as received and what it did."""

    at: float
    who: str
    command: str
    args: str
    result: str


def stored_order(row: tuple) -> StoredOrder:
    """An `orders` row, in the table's column order."""
    (account, oid, symbol, side, otype, amount, filled, status, ts, client_id, price, average,
     fee_cost, fee_currency, purpose, updated_at, stop_price) = row  # fmt: skip
    order = Order(
        id=oid,
        symbol=symbol,
        side=Side(side),
        type=OrderType(otype),
        amount=amount,
        filled=filled,
        status=OrderStatus(status),
        timestamp=ts,
        client_order_id=client_id,
        price=price,
        average=average,
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        stop_price=stop_price,
    )
    return StoredOrder(account, order, purpose, updated_at)
