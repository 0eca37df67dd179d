"""What the trader's operations return: plain data for the handlers to format, never text.

Every result says which account it is about, whether the operation was done (`ok`), and if not
why (`reason`, a refusal the user is told), and the trader's mode afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trading.models import Order, Position
from trading.modes import Mode
from trading.reconcile import Difference
from trading.store import Ban, ClosedTrade


@dataclass(frozen=True, kw_only=True)
class Result:
    """Base of every operation's result."""

    account: str
    ok: bool
    mode: Mode
    reason: str = ""  # why it was refused, or what is still wrong


@dataclass(frozen=True, kw_only=True)
class ModeResult(Result):
    """pause / unpause / stop / resume."""

    old: Mode | None = None
    cancelled: int = 0  # orders cancelled on the way
    exiting: int = 0  # positions a stop, kill or failsafe is exiting
    positions: int = 0  # positions held afterwards


@dataclass(frozen=True, kw_only=True)
class KillResult(Result):
    flat: bool = False
    cancelled: int = 0
    closed: tuple[ClosedTrade, ...] = ()
    remaining: tuple[str, ...] = ()  # symbols still held; the trader keeps trying
    rounds: int = 0
    seconds: float = 0.0
    problems: tuple[str, ...] = ()
    left: tuple[str, ...] = ()  # coins still held that are not the bot's to sell, and why


@dataclass(frozen=True, kw_only=True)
class AbortResult(Result):
    positions: tuple[Position, ...] = ()  # what stays open at the exchange
    open_orders: tuple[Order, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SyncResult(Result):
    differences: tuple[Difference, ...] = ()
    positions: int = 0
    open_orders: int = 0


@dataclass(frozen=True, kw_only=True)
class OrderResult(Result):
    """buy / sell."""

    symbol: str = ""
    side: str = ""
    amount: float = 0.0  # filled, in base
    price: float = 0.0  # average fill price
    cost: float = 0.0  # in quote
    order_id: str | None = None
    closed: ClosedTrade | None = None  # the round trip a sell completed
    stop_loss: float | None = None  # a buy's: its position's protection
    take_profit: float | None = None
    guard: str = "none"  # where the stop-loss is watched: "exchange" | "bot" | "none"
    resting: float = 0.0  # base still resting at the exchange (a limit buy not filled yet)
    limit_price: float | None = None
    left: float = 0.0  # a sell's: what the position still holds afterwards


@dataclass(frozen=True, kw_only=True)
class ResetResult(Result):
    """reset_paper: what a paper or dry-run account held when it started afresh."""

    positions: tuple[Position, ...] = ()  # dropped from the bot's book, not sold
    open_orders: tuple[Order, ...] = ()  # the bot's, dropped with the account's orders
    before: dict[str, float] = field(default_factory=dict)  # the account's totals, non-zero
    after: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BanResult(Result):
    symbol: str = ""
    bans: tuple[Ban, ...] = ()


@dataclass(frozen=True)
class PositionView:
    """A position priced now."""

    symbol: str
    amount: float
    entry_price: float
    price: float | None  # None: no price seen yet
    value: float
    pnl: float
    pnl_pct: float
    stop_loss: float | None
    take_profit: float | None
    opened_at: float
    banned: bool = False
    guard: str = "none"  # where its stop-loss is watched: "exchange" | "bot" | "none"
    guard_why: str = ""  # why not at the exchange
    manual: bool = False  # opened by /buy: the strategy's exit signal leaves it alone


@dataclass(frozen=True, kw_only=True)
class InfoResult(Result):
    quote: str = "USDT"
    free_quote: float = 0.0
    equity: float = 0.0
    exposure: float = 0.0  # fraction of equity in positions
    positions: tuple[PositionView, ...] = ()
    open_orders: int = 0
    bans: int = 0
    health: object | None = None  # trading.connector.HealthSnapshot
    started: bool = False
    last_cycle_at: float | None = None
    last_cycle_seconds: float | None = None
    last_sync_at: float | None = None
    last_error: str | None = None
    balances: dict[str, float] = field(default_factory=dict)  # total, non-zero
    feed: str = "off"  # the event feed: off | unavailable | up | down (REST polling)


@dataclass(frozen=True)
class Lock:
    """Why a symbol cannot be entered for now."""

    symbol: str
    kind: str  # "cooldown" | "auto-ban"
    seconds_left: float | None  # on the market's clock; None: until /unlock or /unban
    reason: str


@dataclass(frozen=True, kw_only=True)
class LocksResult(Result):
    """/unlock: what was cleared, and the locks left."""

    symbol: str = ""
    cleared: tuple[str, ...] = ()
    locks: tuple[Lock, ...] = ()
