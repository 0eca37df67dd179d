"""What the connector tests share: a scripted Venue, a notify that records, and their fixtures.

The ScriptedVenue queues faults per call and holds orders in memory, and counts and can stall
every call; all of it runs on a FakeClock, so every wait is simulated time that a test can assert
exactly. Test modules import the fixtures below by their function names (pytest finds a fixture
by module attribute and uses the name given in `@pytest.fixture(name=...)`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence

import pytest

from sim.clock import FakeClock
from trading.connector import Connector
from trading.errors import OrderNotFound, Transient
from trading.events import Event, FaultRaised
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
)

SYMBOL = "BTC/USDT"


class ScriptedVenue:
    """A Venue whose next calls fail as scripted. `after=True`: the call takes effect, then
    fails (a create that times out after the exchange accepted it)."""

    has_bulk_tickers = True
    stop_types: tuple[OrderType, ...] = ()

    def __init__(self, clock: FakeClock, *, name: str = "fake", dead_man: bool = True) -> None:
        self.name = name
        self.account = "MAIN"
        self.has_cancel_all_after = dead_man
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.sequence: list[str] = []  # every call, in order
        self.script: dict[str, list[tuple[BaseException, bool]]] = defaultdict(list)
        self.forever: dict[str, BaseException] = {}
        self.orders: dict[str, Order] = {}
        self.offset_ms = 0.0
        self.dead_man_seconds: float | None = None
        self.gate: asyncio.Event | None = None  # when set, fetch_tickers waits for it
        self.create_gate: asyncio.Event | None = None  # when set, create_order waits for it

    def inject(self, call: str, fault: BaseException, *, count: int = 1, after: bool = False):
        if count == -1:
            self.forever[call] = fault
        else:
            self.script[call].extend([(fault, after)] * count)

    def clear(self) -> None:
        self.script.clear()
        self.forever.clear()

    def _enter(self, call: str) -> BaseException | None:
        """Count the call; raise a fault scripted to come first, return one due after."""
        self.calls[call] += 1
        self.sequence.append(call)
        if call in self.forever:
            raise self.forever[call]
        if self.script[call]:
            fault, after = self.script[call].pop(0)
            if not after:
                raise fault
            return fault
        return None

    async def load_markets(self) -> dict[str, Market]:
        self._enter("load_markets")
        return {SYMBOL: Market(SYMBOL, "BTC", "USDT")}

    async def fetch_tickers(self, symbols: Sequence[str] | None = None) -> dict[str, Ticker]:
        self._enter("fetch_tickers")
        if self.gate is not None:
            await self.gate.wait()
        return {SYMBOL: Ticker(SYMBOL, 100.0, 99.9, 100.1, 1e6, 1.0, self.clock.time())}

    async def fetch_ohlcv(self, symbol: str, timeframe: str, limit: int) -> list[Candle]:
        self._enter("fetch_ohlcv")
        return [Candle(self.clock.time(), 1.0, 1.0, 1.0, 1.0, 1.0)] * limit

    async def fetch_balance(self) -> Balance:
        self._enter("fetch_balance")
        return Balance(free={"USDT": 1000.0}, total={"USDT": 1000.0})

    async def fetch_open_orders(self) -> list[Order]:
        self._enter("fetch_open_orders")
        return [o for o in self.orders.values() if o.is_open]

    async def fetch_order(self, order_id: str, symbol: str) -> Order:
        self._enter("fetch_order")
        if order_id not in self.orders:
            raise OrderNotFound(f"order {order_id} not found")
        return self.orders[order_id]

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        self._enter("find_order")
        return next((o for o in self.orders.values() if o.client_order_id == client_order_id), None)

    async def create_order(self, request: OrderRequest) -> Order:
        late = self._enter("create_order")
        if self.create_gate is not None:
            await self.create_gate.wait()
        order = Order(
            id=f"o{len(self.orders) + 1}",
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            amount=request.amount,
            filled=0.0,
            status=OrderStatus.OPEN,
            timestamp=self.clock.time(),
            client_order_id=request.client_order_id,
            price=request.price,
        )
        self.orders[order.id] = order
        if late is not None:
            raise late
        return order

    async def cancel_order(self, order_id: str, symbol: str) -> None:
        late = self._enter("cancel_order")
        if order_id not in self.orders:
            raise OrderNotFound(f"order {order_id} not found")
        order = self.orders[order_id]
        self.orders[order_id] = Order(**{**_fields(order), "status": OrderStatus.CANCELED})
        if late is not None:
            raise late

    async def cancel_all_after(self, timeout_seconds: float) -> None:
        self._enter("cancel_all_after")
        self.dead_man_seconds = timeout_seconds

    async def sync_time(self) -> float:
        self._enter("sync_time")
        self.offset_ms = 1234.0
        return self.offset_ms

    @property
    def clock_offset_ms(self) -> float:
        return self.offset_ms

    async def close(self) -> None:
        self._enter("close")


def _fields(order: Order) -> dict:
    return {name: getattr(order, name) for name in order.__slots__}


class Recorder:
    """A notify that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def faults(self) -> list[FaultRaised]:
        return [e for e in self.events if isinstance(e, FaultRaised)]


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="venue")
def venue_fixture(clock: FakeClock) -> ScriptedVenue:
    return ScriptedVenue(clock)


@pytest.fixture(name="notes")
def notes_fixture() -> Recorder:
    return Recorder()


def connect(venue: ScriptedVenue, clock: FakeClock, notes: Recorder | None = None, **kw):
    return Connector(venue, clock=clock, notify=notes or Recorder(), **kw)


def buy(client_id: str = "cid-1") -> OrderRequest:
    return OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, 0.01, client_id, price=100.0)


async def open_circuit(conn: Connector, venue: ScriptedVenue, faults: int) -> None:
    venue.inject("fetch_tickers", Transient("timeout"), count=faults)
    for _ in range(faults):
        with pytest.raises(Transient):
            await conn.tickers()


async def sync_at(conn: Connector, clock: FakeClock, at: float):
    clock.advance(at - clock.monotonic())
    return await conn.sync()
