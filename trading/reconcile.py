"""Reconciliation: make the book agree with the exchange, which is the source of truth.

On start and on every sync: orders sent with an unknown outcome are looked up by client order
id; orders of ours that left the exchange's open list are fetched and their fills applied
(fills that happened while the bot was down are adopted this way); positions whose coins are
no longer in the balance are closed or shrunk. Orders that are not the bot's are never touched.
Every difference found is returned as data, for /sync to show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from trading.book import Book, Tracked, is_dust
from trading.errors import ClockRejected, Fatal, Fault, Rejected
from trading.models import AccountState, Order, OrderStatus

if TYPE_CHECKING:
    from trading.connector import Connector

# A balance this much below a position is a real difference, not rounding or a fee.
SHORTFALL_TOLERANCE = 0.001


@dataclass(frozen=True)
class Difference:
    """One thing the exchange said that the book did not know."""

    kind: str  # adopted | filled | gone | never_placed | position_closed | position_reduced
    #            | foreign_orders | unresolved
    symbol: str
    detail: str


async def reconcile(
    connector: Connector,
    book: Book,
    state: AccountState,
    *,
    log: logging.Logger,
) -> list[Difference]:
    """Bring `book` in line with `state` (a fresh sync). Fatal and bugs propagate."""
    differences: list[Difference] = []
    open_on_exchange = {o.id: o for o in state.open_orders}
    by_client = {o.client_order_id: o for o in state.open_orders if o.client_order_id}
    for tracked in list(book.orders.values()):
        found = await _resolve(connector, book, tracked, open_on_exchange, by_client, log)
        if found is not None:
            differences.append(found)
    # The balance already counts every fill above: it replaces the book's running estimate
    # only now, so that applying those fills did not count them twice.
    book.free = dict(state.balance.free)
    differences += _positions_against_balance(book, state)
    ours = {t.order.id for t in book.orders.values()}
    foreign = [o for o in state.open_orders if o.id not in ours]
    if foreign:
        symbols = ", ".join(sorted({o.symbol for o in foreign}))
        differences.append(
            Difference("foreign_orders", "", f"{len(foreign)} open orders not the bot's: {symbols}")
        )
    for d in differences:
        if d.kind != "foreign_orders":
            log.info("reconcile: %s %s: %s", d.kind, d.symbol, d.detail)
    return differences


async def _resolve(
    connector: Connector,
    book: Book,
    tracked: Tracked,
    open_on_exchange: dict[str, Order],
    by_client: dict[str, Order],
    log: logging.Logger,
) -> Difference | None:
    order = tracked.order
    if not tracked.confirmed:
        return await _resolve_unconfirmed(connector, book, tracked, by_client)
    if order.id in open_on_exchange:
        seen = open_on_exchange[order.id]
        closed = book.update(seen)
        if seen.filled > order.filled:
            return Difference("filled", order.symbol, f"{seen.filled:g} of {seen.amount:g} filled")
        return Difference("position_closed", order.symbol, "exit filled") if closed else None
    try:
        final = await connector.fetch_order(order.id, order.symbol)
    except Fatal:
        raise
    except Rejected as fault:
        if isinstance(fault, ClockRejected):
            return Difference("unresolved", order.symbol, f"order {order.id}: {fault.kind}")
        # The exchange no longer knows it: nothing more will fill.
        book.update(_finished(order))
        return Difference("gone", order.symbol, f"order {order.id} unknown: {fault.message}")
    except Fault as fault:
        log.info("reconcile: order %s not resolved yet (%s)", order.id, fault.kind)
        return Difference("unresolved", order.symbol, f"order {order.id}: {fault.kind}")
    was = order.filled
    book.update(final)
    if final.is_open:
        return None  # listed late: still working
    if final.filled > was:
        return Difference(
            "adopted", order.symbol, f"{final.side} {final.filled - was:g} filled while away"
        )
    return Difference("gone", order.symbol, f"order {order.id} {final.status}")


async def resolve_unconfirmed(
    connector: Connector, book: Book, tracked: Tracked, *, gated: bool = True
) -> Difference | None:
    """One order sent with an unknown outcome, looked up by its client order id alone (no
    sync): adopted if the exchange has it, dropped if not. `gated=False` goes past an open
    circuit, as orders and cancels do, for a flatten that must not wait on a failing sync."""
    return await _resolve_unconfirmed(connector, book, tracked, {}, gated=gated)


async def _resolve_unconfirmed(
    connector: Connector,
    book: Book,
    tracked: Tracked,
    by_client: dict[str, Order],
    *,
    gated: bool = True,
) -> Difference | None:
    cid = tracked.client_id
    symbol = tracked.order.symbol
    found = by_client.get(cid)
    if found is None:
        try:
            found = await find_order(connector, cid, symbol, gated=gated)
        except Fatal:
            raise
        except Fault as fault:
            return Difference("unresolved", symbol, f"order {cid}: {fault.kind}")
    if found is None:
        book.not_placed(tracked, "not on the exchange")
        return Difference("never_placed", symbol, f"order {cid} never reached the exchange")
    book.placed(tracked, found)
    return Difference("adopted", symbol, f"order {cid} was placed ({found.status})")


async def find_order(
    connector: Connector, client_order_id: str, symbol: str, *, gated: bool = True
) -> Order | None:
    """Look an order up by client order id (a retried read, counted in the health score)."""
    return await connector.find_order(client_order_id, symbol, gated=gated)


def _finished(order: Order) -> Order:
    """An order the exchange holds no longer, with what it filled."""
    status = OrderStatus.CLOSED if order.filled >= order.amount else OrderStatus.CANCELED
    return replace(order, status=status)


def _positions_against_balance(book: Book, state: AccountState) -> list[Difference]:
    differences: list[Difference] = []
    markets = book.markets()
    for symbol, position in list(book.positions.items()):
        market = markets.get(symbol)
        if market is None:
            continue
        total = state.balance.total_of(market.base)
        if total >= position.amount * (1 - SHORTFALL_TOLERANCE):
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
    return differences
