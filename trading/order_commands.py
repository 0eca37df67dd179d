"""/orders and /cancelorder on one trader: its working orders and the owner's own, under short
ids, and the cancel of one of the bot's; and the expiry of limit entries left resting.

A short id is a hash of the order's client order id (the exchange's id for an order that is not
the bot's), so it is the same on every call for as long as the order works, and the same before
and after the exchange acknowledged it. Nothing here cancels an order that is not the bot's.
A protective stop cancelled by hand leaves its position unguarded until the next cycle, which
rests it again in every mode that keeps guards (not hands-off).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from trading.book import Tracked
from trading.errors import Fault
from trading.models import Order, OrderType, Side
from trading.modes import Purpose, guards
from trading.orders import protects
from trading.parts import Parts, describe
from trading.results import Result
from trading.store import ClosedTrade

THEIRS = "yours"  # the purpose shown for an order that is not the bot's
# What a flattening sends: cancelled, it would be sent again at once; /pause stops it instead.
_NOT_BY_HAND = frozenset({Purpose.KILL, Purpose.FAILSAFE})


def short_id(key: str) -> str:
    """Six hex digits standing for an order id: short enough to type on a phone."""
    return hashlib.blake2s(key.encode(), digest_size=3).hexdigest()


@dataclass(frozen=True)
class WorkingOrder:
    """One order working at the exchange (or on its way there)."""

    short_id: str
    symbol: str
    side: str
    purpose: str  # entry, manual, guard, exit, protect, stop, kill, failsafe; THEIRS
    type: str
    amount: float
    filled: float
    price: float | None
    stop_price: float | None
    age: float  # seconds, on the market's clock
    confirmed: bool = True  # False: sent with an unknown outcome
    protective: bool = False  # it holds a position's stop (a guard, a /stop's OCO exit)

    @property
    def theirs(self) -> bool:
        return self.purpose == THEIRS


@dataclass(frozen=True, kw_only=True)
class OrdersResult(Result):
    orders: tuple[WorkingOrder, ...] = ()
    synced_at: float | None = None  # when the owner's own orders were last read


@dataclass(frozen=True, kw_only=True)
class CancelOrderResult(Result):
    order: WorkingOrder | None = None
    closed: tuple[ClosedTrade, ...] = ()  # what it had filled before it went
    unguarded: bool = False  # a protective stop went: its position rests without one
    guard_back: bool = False  # the next cycle rests it again (the mode keeps guards)


class OrderCommands:
    """What /orders and /cancelorder do to one trader."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def orders(self) -> OrdersResult:
        """The bot's working orders, then the owner's as the last sync saw them (no request)."""
        p = self.parts
        now = p.connector.market_time()
        ours = [self._view(t.order, t.purpose, now, t) for t in p.book.orders.values()]
        theirs = [self._view(o, THEIRS, now) for o in p.account.foreign]
        ours.sort(key=lambda w: (w.symbol, w.purpose))
        theirs.sort(key=lambda w: w.symbol)
        return OrdersResult(
            account=p.label,
            ok=True,
            mode=p.state.mode,
            orders=tuple(ours + theirs),
            synced_at=p.account.last_sync_at,
        )

    def find(self, short: str) -> WorkingOrder | None:
        return next((w for w in self.orders().orders if w.short_id == short.lower()), None)

    async def cancel(self, short: str) -> CancelOrderResult:
        """Cancel the bot's working order `short`; the owner's own orders are refused."""
        p = self.parts
        found = self.find(short)

        def refuse(reason: str) -> CancelOrderResult:
            return CancelOrderResult(
                account=p.label, ok=False, mode=p.state.mode, reason=reason, order=found
            )

        if found is None:
            return refuse(f"no working order {short}: /orders lists them")
        if found.theirs:
            return refuse(
                f"order {short} ({found.symbol}) is yours, not the bot's: it never cancels those"
            )
        if not found.confirmed:
            return refuse(f"order {short} was sent with an unknown outcome: the sync settles it")
        if found.purpose in _NOT_BY_HAND:
            return refuse(
                f"order {short} is part of a {found.purpose} that sends it again; /pause stops it"
            )

        async def body() -> CancelOrderResult:
            tracked = self._tracked(short)
            if tracked is None:
                return refuse(f"order {short} is no longer working")
            try:
                closed = await p.router.cancel(tracked)
            except Fault as fault:
                return refuse(f"cancel failed: {describe(fault)}")
            if tracked.order.id in p.book.orders:
                return refuse(f"order {short} is still open at the exchange")
            symbol = tracked.order.symbol
            unguarded = protects(tracked) and symbol in p.book.positions
            p.log.info("%s %s order %s cancelled by command", symbol, tracked.purpose, short)
            return CancelOrderResult(
                account=p.label,
                ok=True,
                mode=p.state.mode,
                order=found,
                closed=tuple(closed),
                unguarded=unguarded,
                guard_back=unguarded and guards(p.state.mode),
            )

        return await p.locked(body, refuse)

    def _tracked(self, short: str) -> Tracked | None:
        return next(
            (t for t in self.parts.book.orders.values() if short_id(t.client_id) == short.lower()),
            None,
        )

    @staticmethod
    def _view(order: Order, purpose: str, now: float, tracked: Tracked | None = None):
        key = tracked.client_id if tracked is not None else order.id
        return WorkingOrder(
            short_id=short_id(key),
            symbol=order.symbol,
            side=str(order.side),
            purpose=str(purpose),
            type=str(order.type),
            amount=order.amount,
            filled=order.filled,
            price=order.price,
            stop_price=order.stop_price,
            age=max(0.0, now - order.timestamp),
            confirmed=tracked.confirmed if tracked is not None else True,
            protective=tracked is not None and protects(tracked),
        )


async def expire_entries(p: Parts) -> int:
    """Cancel the limit buys (the owner's /buy limit=, the strategy's) that rested past
    ENTRY_ORDER_TIMEOUT_SECONDS on the market's clock; how many went. A failed cancel is tried
    again next cycle."""
    now = p.connector.market_time()
    timeout = p.settings.entry_order_timeout_seconds
    stale = [
        t
        for t in p.book.orders.values()
        if t.side is Side.BUY
        and t.confirmed
        and t.order.type is OrderType.LIMIT
        and now - t.order.timestamp >= timeout
    ]
    for tracked in stale:
        p.log.info("%s: limit entry expired after %.0f s", tracked.order.symbol, timeout)
        await p.quietly(p.router.cancel(tracked))
    return len(stale)
