"""Reconciliation: make the book agree with the exchange, which is the source of truth.

On start and on every sync: orders sent with an unknown outcome are looked up by client order
id; orders of ours that left the exchange's open list are fetched (together, where the exchange
reads many by id in one request) and their fills applied (fills that happened while the bot was
down are adopted this way); positions whose coins are no longer in the balance are closed or
shrunk; orders carrying this account's client id tag that the book does not follow are taken
back as the bot's (trading/reconcile_adopt.py). Orders that are not the bot's are never touched.
Every difference found is returned as data, for /sync to show.

Two conclusions are never drawn from one look, because a look can be too early:

- an order of unknown outcome is declared never placed only after NEVER_PLACED_MISSES lookups
  that did not find it, each made once the request was older than `settle_seconds` (the
  exchange's receive window plus a margin): before that, the exchange could still accept it;
- a position is closed or shrunk for a balance shortfall only when the shortfall shows on
  SHORTFALL_SYNCS consecutive syncs, and never in a pass that moved an order of its symbol
  (a fill seen in the orders may not show in the balance yet, or the other way round). Until
  then the shortfall is reported as "unresolved": the book knows it may be wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from trading.book import EPSILON, Book, Tracked, is_dust
from trading.clock import Clock
from trading.errors import ClockRejected, OrderNotFound, Recoverable, Rejected
from trading.events import Notify, discard
from trading.models import AccountState, Order, OrderStatus
from trading.reconcile_adopt import Adopter

if TYPE_CHECKING:
    from trading.connector import Connector

# A balance this much below a position is a real difference, not rounding or a fee.
SHORTFALL_TOLERANCE = 0.001
NEVER_PLACED_MISSES = 2
SHORTFALL_SYNCS = 2
# Added to the exchange's receive window: its clock, ours and the request's travel time.
SETTLE_MARGIN_SECONDS = 20.0


def _since(tracked: Tracked, key: str, known: frozenset[str] | None) -> bool:
    """An order the exchange acknowledged after the sync asked for its list (one still in doubt
    is looked up by client id whatever the list says)."""
    return known is not None and tracked.confirmed and key not in known


def settle_seconds(recv_window_ms: float) -> float:
    """How long after a request of unknown outcome the exchange may still accept it."""
    return recv_window_ms / 1000.0 + SETTLE_MARGIN_SECONDS


@dataclass(frozen=True)
class Difference:
    """One thing the exchange said that the book did not know."""

    kind: str  # adopted | filled | gone | never_placed | position_closed | position_reduced
    #            | foreign_orders | unresolved (an order or a balance not settled yet)
    symbol: str
    detail: str


class Reconciler:
    """Brings one trader's book in line with the exchange, and remembers between syncs what a
    single look cannot settle: orders of unknown outcome not found yet, balances short of a
    position."""

    def __init__(
        self,
        connector: Connector,
        book: Book,
        *,
        clock: Clock,
        log: logging.Logger,
        settle_seconds: float = settle_seconds(10_000),
        misses: int = NEVER_PLACED_MISSES,
        shortfall_syncs: int = SHORTFALL_SYNCS,
        notify: Notify = discard,
    ) -> None:
        self.connector = connector
        self.book = book
        self.clock = clock
        self.log = log
        self.settle_seconds = settle_seconds
        self.misses = misses
        self.shortfall_syncs = shortfall_syncs
        self._misses: dict[str, int] = {}  # client order id -> lookups past the window
        self._short: dict[str, int] = {}  # symbol -> consecutive syncs showing a shortfall
        self._refused: dict[str, int] = {}  # order id -> lookups refused with a generic error
        self._fee_owed: dict[str, str] = {}  # order id -> symbol: pushed closed without its fee
        self._listed = True  # the sync under way read the open-order list
        self.adopter = Adopter(connector, book, clock=clock, notify=notify, log=log)

    async def reconcile(
        self, state: AccountState, known: frozenset[str] | None = None
    ) -> list[Difference]:
        """Bring the book in line with `state` (a fresh sync; `state.listed` False: one without the
        open-order list, so every order of ours is read by id). `known`: the book's acknowledged
        orders when the list was asked for; one acknowledged since (a stop put back by a command
        meanwhile) may be missing from it, and is left to the next sync. Fatal and bugs
        propagate."""
        book = self.book
        self._listed = state.listed  # asked of by `_gone` for every order below
        differences: list[Difference] = []
        open_on_exchange = {o.id: o for o in state.open_orders}
        by_client = {o.client_order_id: o for o in state.open_orders if o.client_order_id}
        read = await self._read_together(open_on_exchange)
        for key, tracked in list(book.orders.items()):
            if _since(tracked, key, known) and tracked.order.id not in open_on_exchange:
                continue  # acknowledged after the list was read: its absence says nothing
            found = await self._resolve(tracked, open_on_exchange, by_client, read)
            if found is not None:
                differences.append(found)
        # After the book's own orders: a placeholder this pass confirmed is followed by now.
        for order in state.open_orders:
            if self.adopter.stray(order):
                differences.append(Difference("adopted", order.symbol, self.adopter.adopt(order)))
        for symbol, why in await self.adopter.cancel_orphans():
            differences.append(Difference("unresolved", symbol, why))
        await self._look_up_fees()
        # The balance already counts every fill above: it replaces the book's running estimate
        # only now, so that applying those fills did not count them twice.
        book.free = dict(state.balance.free)
        moved = {d.symbol for d in differences}
        moved |= {t.order.symbol for t in book.orders.values() if not t.confirmed}
        differences += self._positions_against_balance(state, moved)
        ours = {t.order.id for t in book.orders.values()}
        foreign = [o for o in state.open_orders if o.id not in ours]
        if foreign and state.listed:
            symbols = ", ".join(sorted({o.symbol for o in foreign}))
            differences.append(
                Difference(
                    "foreign_orders", "", f"{len(foreign)} open orders not the bot's: {symbols}"
                )
            )
        for d in differences:
            if d.kind != "foreign_orders":
                self.log.info("reconcile: %s %s: %s", d.kind, d.symbol, d.detail)
        return differences

    def apply(self, order: Order) -> Difference | None:
        """An order's state the exchange pushed (trading/feed_consumer.py), applied as the sync
        applies what it reads: a placement of unknown outcome adopted by its client id, a
        fill as a delta over what the store recorded. An older look (less filled, or an order
        the book no longer follows) changes nothing."""
        tracked = self.book.orders.get(order.id)
        if tracked is None and order.client_order_id:
            tracked = self.book.orders.get(order.client_order_id)  # a placeholder's key
            if tracked is None and self.adopter.stray(order):
                # Open and not the bot's to keep, it is cancelled by the next sync.
                return Difference("adopted", order.symbol, self.adopter.adopt(order))
            if tracked is None or tracked.confirmed:
                return None
            self._forget(order.client_order_id)
            self.book.placed(tracked, order)
            self._owe_fee(order)
            return Difference("adopted", order.symbol, f"order {order.client_order_id} pushed")
        if tracked is None or not tracked.confirmed:
            return None
        was = tracked.order.filled
        self.book.update(order)
        self._owe_fee(order)
        if order.filled > was + EPSILON:
            return Difference("filled", order.symbol, f"{order.filled:g} of {order.amount:g}")
        return None if order.is_open else Difference("gone", order.symbol, str(order.status))

    async def resolve_unconfirmed(
        self, tracked: Tracked, *, gated: bool = True
    ) -> Difference | None:
        """One order sent with an unknown outcome, looked up by its client order id alone (no
        sync): adopted if the exchange has it, dropped once it is settled as never placed.
        `gated=False` goes past an open circuit, as orders and cancels do, for a flatten that
        must not wait on a failing sync."""
        return await self._resolve_unconfirmed(tracked, {}, gated=gated)

    # -- orders

    async def _read_together(self, open_on_exchange: dict[str, Order]) -> dict[str, Order]:
        """Our orders that left the open list, read by id in as few requests as the exchange
        allows (Kraken: twenty in one, at the cost of one private read); what a read could not
        say is read one by one after."""
        per_read = self.connector.orders_per_read()
        left = [
            t.order.id
            for t in self.book.orders.values()
            if t.confirmed and t.order.id not in open_on_exchange
        ]
        if per_read < 2 or len(left) < 2:
            return {}
        read: dict[str, Order] = {}
        for start in range(0, len(left), per_read):
            try:
                orders = await self.connector.fetch_orders(
                    left[start : start + per_read], gated=False
                )
            except Recoverable as fault:
                self.log.info("reconcile: orders not read together (%s)", fault.kind)
                continue
            read.update((o.id, o) for o in orders)
        return read

    async def _resolve(
        self,
        tracked: Tracked,
        open_on_exchange: dict[str, Order],
        by_client: dict[str, Order],
        read: dict[str, Order],
    ) -> Difference | None:
        order = tracked.order
        if not tracked.confirmed:
            # Past an open circuit, as the sync itself: an exit in doubt must not wait behind
            # a cooldown that scan traffic opened (a kill would hold for as long).
            return await self._resolve_unconfirmed(tracked, by_client, gated=False)
        if order.id in open_on_exchange:
            seen = open_on_exchange[order.id]
            closed = self.book.update(seen)
            if seen.filled > order.filled:
                return Difference(
                    "filled", order.symbol, f"{seen.filled:g} of {seen.amount:g} filled"
                )
            return Difference("position_closed", order.symbol, "exit filled") if closed else None
        try:
            final = read.get(order.id) or await self.connector.fetch_order(
                order.id, order.symbol, gated=False
            )
        except Rejected as fault:
            if not self._gone(order, fault):
                return Difference("unresolved", order.symbol, f"order {order.id}: {fault.kind}")
            # The exchange no longer knows it: nothing more will fill.
            self._refused.pop(order.id, None)
            self.book.update(_finished(order))
            return Difference("gone", order.symbol, f"order {order.id} unknown: {fault.message}")
        except Recoverable as fault:
            self.log.info("reconcile: order %s not resolved yet (%s)", order.id, fault.kind)
            return Difference("unresolved", order.symbol, f"order {order.id}: {fault.kind}")
        self._refused.pop(order.id, None)
        was = order.filled
        self.book.update(final)
        if final.is_open:
            return None  # listed late: still working
        if final.filled > was:
            return Difference(
                "adopted", order.symbol, f"{final.side} {final.filled - was:g} filled while away"
            )
        return Difference("gone", order.symbol, f"order {order.id} {final.status}")

    def _owe_fee(self, order: Order) -> None:
        """A pushed order closed with fills but no fee: the next sync looks it up once."""
        if not order.is_open and order.filled > EPSILON and order.fee_currency is None:
            self._fee_owed[order.id] = order.symbol

    async def _look_up_fees(self) -> None:
        """One REST look at each order a push closed without saying its fee: the book charges
        what that look reports (the feed's fill stays applied whatever the answer)."""
        owed, self._fee_owed = self._fee_owed, {}
        for order_id, symbol in owed.items():
            try:
                self.book.update(await self.connector.fetch_order(order_id, symbol))
            except Recoverable as fault:
                self.log.info("reconcile: no fee for order %s (%s)", order_id, fault.kind)

    def _gone(self, order: Order, fault: Rejected) -> bool:
        """Whether a refused lookup means the exchange no longer has the order. OrderNotFound
        says so; a generic refusal might be about the request, and taking it for "gone, nothing
        more filled" would lose track of a resting order that fills later. It is believed only
        when it repeats over `misses` syncs, so an exchange that answers unknown orders that way
        cannot hold up exits for ever. Without the open-order list beside it (a kill's
        confirming read) nothing is believed: an exchange answers "not found" for a moment
        after it took an order (a stop just put back), and the list is what would show it."""
        if not self._listed:
            return False
        if isinstance(fault, OrderNotFound):
            return True
        if isinstance(fault, ClockRejected):
            return False
        refused = self._refused.get(order.id, 0) + 1
        self._refused[order.id] = refused
        return refused >= self.misses

    async def _resolve_unconfirmed(
        self, tracked: Tracked, by_client: dict[str, Order], *, gated: bool = True
    ) -> Difference | None:
        cid = tracked.client_id
        symbol = tracked.order.symbol
        found = by_client.get(cid)
        # Asked before the lookup: a miss says "never placed" only if the exchange could no
        # longer accept the request when it was asked.
        too_late = self.clock.monotonic() - self.connector.last_sent(cid) >= self.settle_seconds
        if found is None:
            try:
                found = await self.connector.find_order(cid, symbol, gated=gated)
            except Recoverable as fault:
                return Difference("unresolved", symbol, f"order {cid}: {fault.kind}")
        if tracked.confirmed or self.book.orders.get(tracked.order.id) is not tracked:
            return None  # the placement's own answer (or another pass) settled it meanwhile
        if found is not None:
            self._forget(cid)
            self.book.placed(tracked, found)
            return Difference("adopted", symbol, f"order {cid} was placed ({found.status})")
        if not too_late:
            return Difference("unresolved", symbol, f"order {cid} not seen yet; it may still land")
        misses = self._misses.get(cid, 0) + 1
        if misses < self.misses:
            self._misses[cid] = misses
            return Difference(
                "unresolved",
                symbol,
                f"order {cid} not on the exchange ({misses} of {self.misses} looks)",
            )
        self._forget(cid)
        self.book.not_placed(tracked, "not on the exchange")
        return Difference("never_placed", symbol, f"order {cid} never reached the exchange")

    def _forget(self, cid: str) -> None:
        self._misses.pop(cid, None)
        self.connector.settled(cid)

    # -- positions

    def _positions_against_balance(self, state: AccountState, moved: set[str]) -> list[Difference]:
        book = self.book
        differences: list[Difference] = []
        markets = book.markets()
        short: dict[str, int] = {}
        for symbol, position in list(book.positions.items()):
            market = markets.get(symbol)
            if market is None:
                continue
            total = state.balance.total_of(market.base)
            if total >= position.amount * (1 - SHORTFALL_TOLERANCE):
                continue
            seen = self._short.get(symbol, 0) + 1
            if seen < self.shortfall_syncs or symbol in moved:
                # Counted, not acted on: this pass's order changes may explain it.
                short[symbol] = seen
                differences.append(
                    Difference(
                        "unresolved",
                        symbol,
                        f"balance holds {total:g} {market.base}, position is "
                        f"{position.amount:g}: acted on if the next sync shows it too",
                    )
                )
                continue
            price = position.entry_price
            if is_dust(market, total, price):
                book.close(symbol, price, "balance gone (sold outside the bot)")
                differences.append(
                    Difference("position_closed", symbol, f"no {market.base} left in the balance")
                )
            else:
                book.shrink(symbol, total)
                differences.append(
                    Difference(
                        "position_reduced",
                        symbol,
                        f"balance holds {total:g} {market.base}, position was {position.amount:g}",
                    )
                )
        self._short = short  # a sync without the shortfall ends its streak
        return differences


def _finished(order: Order) -> Order:
    """An order the exchange holds no longer, with what it filled."""
    status = OrderStatus.CLOSED if order.filled >= order.amount else OrderStatus.CANCELED
    return replace(order, status=status)
