"""Placing and cancelling the trader's orders: through the risk gate, recorded in the book
before and after, never retried blindly.

`OrderRouter.place` is the only way an order leaves the trader. It asks the gate, records a
placeholder under a fresh client order id, sends once, and records the answer. A refusal or a
rate limit (answered before the exchange processed the order) drops the placeholder. An unknown
outcome (the connector could not tell whether the exchange took it) keeps the placeholder open
as unconfirmed: it counts as a pending entry or an exit on its way, so nothing is sent again for
that symbol until reconciliation has found it by its client order id, or settled it as never
placed once the exchange could no longer accept it. Concurrent exits share an `OrderPacer`
(trading/order_pacer.py) that slows to the exchange's pace as soon as it says "too many
requests".
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trading.book import Book, Tracked
from trading.clock import Clock
from trading.errors import Fatal, Fault, RateLimited, Recoverable, Rejected
from trading.events import Notify, OrderRejected
from trading.lifting import LiftGate
from trading.models import Order, OrderRequest, OrderType, Side
from trading.modes import Purpose
from trading.order_pacer import OrderPacer
from trading.order_terms import Terms, order_type
from trading.pacing import Priority, at
from trading.risk import OrderIntent, Refused, RiskSnapshot, check, mode_refusal
from trading.settings import TradingSettings
from trading.store import ClosedTrade
from trading.unsure import holds_coins, on_its_way

if TYPE_CHECKING:
    from trading.connector import Connector


@dataclass(frozen=True)
class Placement:
    """What became of one order intent."""

    symbol: str
    side: Side
    order: Order | None = None  # the exchange's order when it was placed
    refused: str | None = None  # the risk gate's reason
    fault: Fault | None = None  # the exchange refused it, or the outcome is unknown
    closed: tuple[ClosedTrade, ...] = ()  # positions this order closed

    @property
    def ok(self) -> bool:
        return self.order is not None

    @property
    def reason(self) -> str:
        if self.refused:
            return self.refused
        if self.fault is not None:
            return f"{self.fault.kind}: {self.fault.message}"
        return ""

    @property
    def unknown(self) -> bool:
        """Sent, and whether the exchange took it is unknown (a timeout, an odd answer)."""
        return self.fault is not None and not isinstance(self.fault, (Rejected, RateLimited))


class OrderRouter:
    """Sends and cancels one trader's orders; every intent passes the risk gate first."""

    def __init__(
        self,
        connector: Connector,
        book: Book,
        *,
        clock: Clock,
        notify: Notify,
        settings: TradingSettings,
        snapshot: Callable[[], RiskSnapshot],
        log: logging.Logger,
        pacer: OrderPacer | None = None,
        steady: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self.connector = connector
        self.book = book
        self.clock = clock
        self.notify = notify
        self.settings = settings
        self.snapshot = snapshot
        self.log = log
        self.pacer = pacer or OrderPacer(clock)
        self._steady = steady  # the trader's lock: a pre-emption waits for an order on its way
        # Read-only outcome counters for /metrics: placed, rejected, rate_limited,
        # refused, unknown.
        self.counts: Counter[str] = Counter()
        self.lifted: set[str] = set()  # symbols whose stop this router lifted for an exit
        self.lifts = LiftGate()
        # Puts a position's stop back right after its exit came back with an unknown outcome
        # (Guards.rearm, wired by the Trader).
        self.rearm: Callable[[str], Awaitable[None]] = _nothing

    async def place(
        self,
        intent: OrderIntent,
        *,
        limit_price: float | None = None,
        stop_price: float | None = None,
        reason: str = "",
        stop_loss: float | None = None,
        take_profit: float | None = None,
        oco: bool = False,
        settle_later: bool = False,
    ) -> Placement:
        """Gate, record, send, record. Fatal and bugs propagate; other faults are results.

        One owner of a position's exits: before the bot sells a position itself, it lifts the
        stop resting at the exchange for it (and applies whatever that stop sold), so the same
        coins are never sold twice. A `stop_price` makes the order a resting stop sell; with a
        `limit_price` and `oco`, a limit sell and that stop on the same coins.

        Every sell (an exit, a resting stop) goes ahead of the account's other requests.
        `settle_later`: the caller reads the fill itself (`OrderRequest.settle_later`)."""
        terms = Terms(
            order_type(limit_price, stop_price, oco),
            limit_price,
            stop_price,
            reason,
            stop_loss,
            take_profit,
            settle_later,
        )
        if intent.side is Side.SELL:
            with at(Priority.EXIT):
                return await self._place_sell(intent, terms)
        return await self._place(intent, terms)

    async def _place_sell(self, intent: OrderIntent, terms: Terms) -> Placement:
        if intent.purpose is Purpose.GUARD:
            return await self._place(intent, terms)
        # Only an exit the mode lets out may lift the stop, or a refused exit would leave the
        # position unguarded. An exit already on its way (its outcome unknown) holds the next
        # one back: asked before the stop is lifted, which would leave the position bare for
        # nothing.
        refusal = self._refusal(intent) or on_its_way(self.book, intent.symbol)
        if refusal:
            self.counts["refused"] += 1
            return Placement(intent.symbol, intent.side, refused=refusal)
        rests = any(protects(t) for t in self.book.open_orders(symbol=intent.symbol))
        async with self.lifts.lifting(rests) as sent:  # one position bare at a time
            self.book.sending(intent.symbol, True)  # no new stop while the exit goes out
            try:
                lifted = await self._lift_guards(intent.symbol)
            finally:
                self.book.sending(intent.symbol, False)
            if lifted is not None:
                return lifted
            return await self._place_exit(intent, terms, sent)

    async def _place_exit(
        self, intent: OrderIntent, terms: Terms, sent: Callable[[], None]
    ) -> Placement:
        """An exit whose outcome comes back unknown gets its position's stop back at once:
        if the exit went through, the exchange refuses the stop for the coins (or, the stop
        landing first, the exit); either way one of them sells, and the position is never
        bare while the reconciliation settles the exit."""
        try:
            placement = await self._place(intent, terms, sent)
        except Fatal:
            await self._rearm(intent.symbol)
            raise
        if placement.unknown:
            await self._rearm(intent.symbol)
        return placement

    async def _rearm(self, symbol: str) -> None:
        try:
            await self.rearm(symbol)
        except Fault as fault:  # the next cycle's stops try again
            self.log.warning("%s: stop not put back beside the exit (%s)", symbol, fault.kind)

    async def _place(
        self, intent: OrderIntent, terms: Terms, sent: Callable[[], None] | None = None
    ) -> Placement:
        purpose = intent.purpose
        decision = check(intent, self.snapshot(), self.settings)
        if isinstance(decision, Refused):
            self.counts["refused"] += 1
            return Placement(intent.symbol, intent.side, refused=decision.reason)
        request = OrderRequest(
            symbol=intent.symbol,
            side=intent.side,
            type=terms.kind,
            amount=decision.amount,
            client_order_id=self.book.new_client_id(purpose),
            price=terms.limit_price,
            # Some exchanges buy at market by cost, so ccxt needs the price decided on.
            reference_price=intent.price,
            stop_price=terms.stop_price,
            settle_later=terms.settle_later,
        )
        tracked = self.book.pending(
            request,
            purpose,
            reason=terms.reason,
            stop_loss=terms.stop_loss,
            take_profit=terms.take_profit,
        )
        if intent.side is Side.SELL:
            self.book.sending(intent.symbol, True)
        try:
            return await self._send(intent, request, tracked, purpose, sent)
        finally:
            if intent.side is Side.SELL:
                self.book.sending(intent.symbol, False)

    async def _send(
        self,
        intent: OrderIntent,
        request: OrderRequest,
        tracked: Tracked,
        purpose: Purpose,
        sent: Callable[[], None] | None,
    ) -> Placement:
        await self.pacer.wait(order=True)
        # The gate was asked before the wait; a command may have paused, stopped, killed or
        # banned since. Asked again here, with no await between it and the send.
        refusal = self._refusal(intent)
        if refusal:
            self.counts["refused"] += 1
            self.book.not_placed(tracked, refusal)
            return Placement(intent.symbol, intent.side, refused=refusal)
        if sent is not None:
            sent()  # on its way: the next position's stop may be lifted
        try:
            with self._steady():
                order = await self.connector.place(request)
        except Rejected as fault:
            self.counts["rejected"] += 1
            self.book.not_placed(tracked, fault.message)
            self._rejected(intent, fault)
            return Placement(intent.symbol, intent.side, fault=fault)
        except RateLimited as fault:
            # Not placed: what called it (an exit, a stop's placement) goes on as after a
            # refusal; the user is not told, the next request just waits longer.
            self.counts["rate_limited"] += 1
            self.pacer.pushed_back(fault)
            self.book.not_placed(tracked, f"{fault.kind}: {fault.message}")
            return Placement(intent.symbol, intent.side, fault=fault)
        except Recoverable as fault:  # Transient, Unrecognized: it could not tell
            self.counts["unknown"] += 1
            self.log.warning(
                "%s %s %s: outcome unknown (%s); left to reconcile",
                purpose,
                intent.side,
                intent.symbol,
                fault.kind,
            )
            return Placement(intent.symbol, intent.side, fault=fault)
        self.counts["placed"] += 1
        closed = self.book.placed(tracked, order)
        return Placement(intent.symbol, intent.side, order=order, closed=tuple(closed))

    def _refusal(self, intent: OrderIntent) -> str | None:
        snap = self.snapshot()
        return mode_refusal(intent, snap.mode, snap.bans, snap.caution)

    async def cancel(self, tracked: Tracked) -> list[ClosedTrade]:
        """Cancel one of our orders and apply whatever it filled before it went."""
        order = tracked.order
        if not tracked.confirmed:
            return []  # reconciliation finds it by client id first
        await self.pacer.wait()  # a kill's fifty cancels share the exchange's pace with its sells
        with self._steady():
            done = await self.connector.cancel(order.id, order.symbol)
        final = done.order
        if final is None or final.is_open:
            final = await self.connector.fetch_order(order.id, order.symbol)
        return self.book.update(final)

    async def _lift_guards(self, symbol: str) -> Placement | None:
        """Cancel the stops resting for `symbol` (a stop's OCO too) before an exit of the bot's
        own; a Placement (the exit not sent) when one could not be cancelled: it still holds
        the coins."""
        for tracked in [t for t in self.book.open_orders(symbol=symbol) if protects(t)]:
            if not tracked.confirmed:
                continue  # its outcome is unknown: the gate holds the exit until it is settled
            try:
                await self.cancel(tracked)
            except Recoverable as fault:
                self.log.warning("%s: resting stop not lifted (%s)", symbol, fault.kind)
                return Placement(symbol, Side.SELL, fault=fault)
            if tracked.order.id in self.book.orders:  # still open at the exchange
                return Placement(symbol, Side.SELL, refused=f"{symbol}: resting stop not lifted")
            self.lifted.add(symbol)
        return None

    async def cancel_all(
        self,
        *,
        keep: Collection[str] = (),
        guarding: Collection[str] = (),
        spare: Collection[str] = (),
    ) -> tuple[int, list[str]]:
        """Cancel every confirmed open order of ours but those whose purpose is in `keep`, the
        stops resting for the symbols in `guarding` (each is lifted right before its own exit),
        and every order of the symbols in `spare` (their exits cancel them), concurrently.
        Returns (cancelled, why some could not be)."""
        targets = [
            t
            for t in list(self.book.orders.values())
            if t.confirmed
            and t.purpose not in keep
            and t.order.symbol not in spare
            and not (protects(t) and t.order.symbol in guarding)
        ]
        results = await asyncio.gather(*(self.cancel(t) for t in targets), return_exceptions=True)
        failures: list[str] = []
        for tracked, result in zip(targets, results, strict=True):
            if isinstance(result, Recoverable):
                failures.append(f"{tracked.order.symbol}: {result.kind}: {result.message}")
            elif isinstance(result, BaseException):
                raise result
        return len(targets) - len(failures), failures

    def _rejected(self, intent: OrderIntent, fault: Rejected) -> None:
        if holds_coins(self.book, intent, fault):
            return  # expected: trading/guards.py waits for the reconciliation
        self.log.warning("%s %s rejected: %s", intent.side, intent.symbol, fault.message)
        self.notify(
            OrderRejected(
                account=self.book.label,
                at=self.clock.time(),
                symbol=intent.symbol,
                side=str(intent.side),
                reason=fault.message[:300],
            )
        )


def protects(tracked: Tracked) -> bool:
    """A resting stop for a position: a guard, or the stop leg of a /stop's OCO exit."""
    return tracked.purpose == Purpose.GUARD or tracked.order.type is OrderType.OCO


async def _nothing(symbol: str) -> None:
    return None
