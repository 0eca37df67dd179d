"""What the store remembers: its tables (version 1; later versions are migrations in
trading/store.py), and the frozen values read from them: orders with their purpose, closed
trades, bans, equity snapshots and the audit log. trading/store.py reads and writes them, and is
where the rest of the code imports them from."""

from __future__ import annotations

from dataclasses import dataclass

from trading.models import Order, OrderStatus, OrderType, Side

SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE positions (
    account TEXT NOT NULL, symbol TEXT NOT NULL, amount REAL NOT NULL,
    entry_price REAL NOT NULL, opened_at REAL NOT NULL, stop_loss REAL, take_profit REAL,
    entry_order_id TEXT, PRIMARY KEY (account, symbol));
CREATE TABLE orders (
    account TEXT NOT NULL, id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, amount REAL NOT NULL, filled REAL NOT NULL, status TEXT NOT NULL,
    timestamp REAL NOT NULL, client_order_id TEXT, price REAL, average REAL,
    fee_cost REAL NOT NULL, fee_currency TEXT, purpose TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (account, id));
CREATE INDEX orders_open ON orders (account, status);
CREATE INDEX orders_client ON orders (client_order_id);
CREATE TABLE trades (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, symbol TEXT NOT NULL,
    amount REAL NOT NULL, entry_price REAL NOT NULL, exit_price REAL NOT NULL,
    opened_at REAL NOT NULL, closed_at REAL NOT NULL, pnl REAL NOT NULL, fees REAL NOT NULL,
    reason TEXT NOT NULL);
CREATE INDEX trades_closed ON trades (closed_at);
CREATE TABLE bans (
    account TEXT NOT NULL, symbol TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    auto INTEGER NOT NULL, PRIMARY KEY (account, symbol));
CREATE TABLE modes (account TEXT PRIMARY KEY, mode TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE equity (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, at REAL NOT NULL,
    equity REAL NOT NULL, exposure REAL NOT NULL);
CREATE INDEX equity_at ON equity (account, at);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
    command TEXT NOT NULL, args TEXT NOT NULL, result TEXT NOT NULL);
"""


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
