"""Plain data the core passes around, and the Venue interface both exchanges implement.

A Venue is one exchange account as raw calls: the ccxt connector (`trading/venues/ccxt_venue.py`)
and the paper exchange (`trading/venues/paper.py`) implement it, and each call either returns
these dataclasses or raises one of the faults of `trading/errors.py`. Resilience (health,
circuit breaker, retries, sync escalation) is layered on top, once, by `trading/connector.py`,
so the paper exchange exercises exactly the code that runs live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, Protocol


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    # Resting at the exchange until the market trades at or below `stop_price` (a sell; the bot
    # only places sell stops): then a market sell, or a limit sell at `price`.
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    # One cancels the other: a limit sell at `price` above the market and a stop-market at
    # `stop_price` below it on the same coins; the first to trade cancels the other (a partial
    # fill of the limit too). A gentle exit that leaves no position bare (Binance's order list).
    OCO = "oco"

    @property
    def is_stop(self) -> bool:
        return self in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)


class OrderStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # fully filled
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str  # "BTC/USDT"
    base: str
    quote: str
    active: bool = True
    spot: bool = True
    min_amount: float = 0.0  # in base
    min_cost: float = 0.0  # minimum notional, in quote
    amount_step: float | None = None  # lot size
    price_step: float | None = None  # tick size


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    last: float
    bid: float
    ask: float
    quote_volume: float  # over 24 h, in quote
    change_pct: float  # over 24 h
    timestamp: float  # epoch seconds


class Candle(NamedTuple):
    ts: float  # open time, epoch seconds
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Balance:
    free: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)

    def free_of(self, currency: str) -> float:
        return self.free.get(currency, 0.0)

    def total_of(self, currency: str) -> float:
        return self.total.get(currency, 0.0)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    amount: float  # in base
    client_order_id: str
    price: float | None = None  # limit price (LIMIT, STOP_LIMIT, OCO); ignored otherwise
    # The price the decision was made at (the ask for a buy). Exchanges that size a market buy
    # in quote (Coinbase, Gate, Bitget, HTX) spend amount * reference_price.
    reference_price: float | None = None
    stop_price: float | None = None  # the trigger of a STOP_MARKET / STOP_LIMIT / OCO
    # The caller reads the order's fill itself soon (a flatten round's confirming read, which
    # reads all its sells at once): a venue whose answer tells no fill need not read it back.
    settle_later: bool = False


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float  # requested, in base
    filled: float  # in base
    status: OrderStatus
    timestamp: float
    client_order_id: str | None = None
    price: float | None = None  # limit price
    average: float | None = None  # average fill price
    fee_cost: float = 0.0
    fee_currency: str | None = None
    stop_price: float | None = None  # the trigger of a stop order

    @property
    def is_open(self) -> bool:
        return self.status is OrderStatus.OPEN

    @property
    def remaining(self) -> float:
        return max(0.0, self.amount - self.filled)


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the sync reads from the exchange: the source of truth."""

    balance: Balance
    open_orders: tuple[Order, ...]
    timestamp: float
    # The open-order list was read: `open_orders` is every open order of the key (a kill's
    # confirming read skips it and reads the bot's own orders by id).
    listed: bool = True


# What an exchange pushes: an order's new state (a fill, a trigger, a cancel), the whole
# account's balance after a change, a market's ticker.
FeedItem = Order | Balance | Ticker
Deliver = Callable[[FeedItem], Awaitable[None]]
# How a feed makes a REST request of its own (a balance snapshot): `through(call, request)`,
# the account's connector counting it with the account's other requests.
Through = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


class Feed(Protocol):
    """An account's event stream, handed to a `Deliver` callback. It never raises at its
    caller: a problem is a state (`healthy` False) and a log line, never a fault."""

    pushes_tickers: bool  # every market's ticker comes by the stream (the scan needs no REST)

    @property
    def healthy(self) -> bool: ...

    def start(self) -> None: ...

    async def close(self) -> None: ...


class Venue(Protocol):
    """One exchange account as raw calls. Every method returns data or raises a Fault."""

    name: str  # ccxt id, or "paper"
    account: str  # "MASTER", "USER_ALICE", ...
    has_bulk_tickers: bool  # one call returns every ticker
    has_cancel_all_after: bool  # exchange-side dead man's switch
    # The resting stop types this venue places, best first (empty: none; the engine then keeps
    # its own stop check against the ticker); OCO among them: it takes a limit sell and a stop
    # on the same coins.
    stop_types: tuple[OrderType, ...]

    async def load_markets(self) -> dict[str, Market]: ...

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]: ...

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]: ...

    async def fetch_balance(self) -> Balance: ...

    async def fetch_open_orders(self) -> list[Order]: ...

    async def fetch_order(self, order_id: str, symbol: str) -> Order: ...

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        """The order placed with this client order id, if the exchange has it."""

    async def create_order(self, request: OrderRequest) -> Order: ...

    async def cancel_order(self, order_id: str, symbol: str) -> Order | None:
        """Cancel; the order's final state when the exchange's answer says it, else None."""

    async def cancel_all_after(self, timeout_seconds: float) -> None:
        """Arm or refresh the exchange-side dead man's switch (0 disarms)."""

    def market_time(self) -> float:
        """The exchange's clock, in epoch seconds (the paper exchange's paper time)."""

    async def sync_time(self) -> float:
        """Measure the exchange clock; returns the offset in milliseconds (exchange - local)."""

    @property
    def clock_offset_ms(self) -> float: ...

    async def close(self) -> None: ...

    def open_feed(self, deliver: Deliver) -> Feed | None:
        """The account's event stream (not started yet), or None where it has none."""


TIMEFRAME_SECONDS = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
}


def account_label(exchange: str, account: str) -> str:
    """How an account is named to the user: `binance:master`."""
    return f"{exchange.lower()}:{account.lower()}"


@dataclass(frozen=True, slots=True)
class Position:
    """A position the bot opened itself. It only ever exits what it opened."""

    account: str  # account label
    symbol: str
    amount: float  # in base
    entry_price: float
    opened_at: float
    stop_loss: float | None = None
    take_profit: float | None = None
    entry_order_id: str | None = None
    manual: bool = False  # opened by /buy: its exits are the owner's and its stops', never a signal

    @property
    def cost(self) -> float:
        return self.amount * self.entry_price
