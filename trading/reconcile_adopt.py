"""Orders of ours the book does not follow, found at the exchange: taken back as the bot's.

The book records every order before it goes out and drops that record only when the exchange
answered that it did not take it: a refusal, or a 429, which exchanges document as answered
before the request is processed. An exchange that executes such an order anyway (or any order
of ours whose record was dropped while the exchange had it) leaves an order carrying our client
id that the book does not know. Listed as the owner's, the bot would never manage it, would count
its fill as the owner's trade, and a /kill would refuse the coins it holds.

Such an order, seen in the sync's open-order list or pushed by the feed (a fill too), is told
apart from the owner's and from another bot instance's by the account tag in its client id
(trading/client_ids.py), and taken into the book with the purpose its id names and the intent
recorded before it was sent:

    entry or manual buy  opens or adds to the position, with the stop-loss it was sent with;
                         the cycle rests its stop as after any entry (trading/guards.py)
    a sell               its fills reduce or close the position; open, it is kept only as the
                         position's one sell of ours: a guard becomes the position's stop
    anything else        cancelled if open (an ORPHAN): a buy of a purpose that does not buy,
                         a purpose the id no longer names, a second sell on a position's coins
                         (two would sell them twice) or a sell of coins no position holds (the
                         owner's) is nothing the bot can manage; its fills are applied first

An orphan is recorded before it is cancelled, so a crash in between finds it again in the store
and the next sync cancels it. Each is announced once (`OrderAdopted`): once recorded, the
store knows its id, and an order the store knows is never adopted again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from trading.book import Book, Tracked, client_id_purpose
from trading.clock import Clock
from trading.errors import Recoverable
from trading.events import Notify, OrderAdopted
from trading.models import Order, Side
from trading.modes import Purpose

if TYPE_CHECKING:
    from trading.connector import Connector

ORPHAN = "orphan"  # the purpose recorded for an order of ours taken back only to be cancelled
_BUYS = (Purpose.ENTRY, Purpose.MANUAL)


class Adopter:
    """Takes one account's stray orders back into its book."""

    def __init__(
        self, connector: Connector, book: Book, *, clock: Clock, notify: Notify, log: logging.Logger
    ) -> None:
        self.connector = connector
        self.book = book
        self.clock = clock
        self.notify = notify
        self.log = log

    def stray(self, order: Order) -> bool:
        """An order of this account's making the book does not follow and never recorded."""
        book = self.book
        cid = order.client_order_id
        if not book.made_here(cid) or order.id in book.orders or cid in book.orders:
            return False  # the owner's, another instance's, or followed (a placeholder by its id)
        return book.store.order(book.label, order.id) is None

    def adopt(self, order: Order) -> str:
        """Record `order` as the bot's (its fills applied) and announce it; what was done."""
        cid = order.client_order_id
        named = client_id_purpose(cid)
        kept = named is not None and self._keeps(order, named)
        purpose = named if kept and named is not None else ORPHAN
        intent = self.book.intent(cid)
        tracked = Tracked(
            order,
            purpose,
            order.side,
            reason=intent.get("reason", ""),
            stop_loss=intent.get("stop_loss"),
            take_profit=intent.get("take_profit"),
            confirmed=False,
        )
        self.book.placed(tracked, order)
        cancelling = purpose == ORPHAN and order.is_open
        self.notify(
            OrderAdopted(
                account=self.book.label,
                at=self.clock.time(),
                symbol=order.symbol,
                side=str(order.side),
                purpose=str(named or ""),
                amount=order.amount,
                filled=order.filled,
                status=str(order.status),
                cancelling=cancelling,
            )
        )
        what = "to be cancelled" if cancelling else f"as {purpose}"
        detail = f"order {cid} of ours the book did not follow ({order.status}): taken {what}"
        self.log.warning("adopted %s: %s", order.symbol, detail)
        return detail

    async def cancel_orphans(self) -> list[tuple[str, str]]:
        """Cancel the open orphans, applying what they filled; (symbol, why) of each that could
        not be cancelled this time (the next sync tries again)."""
        left: list[tuple[str, str]] = []
        for tracked in list(self.book.orders.values()):
            order = tracked.order
            if tracked.purpose != ORPHAN or not tracked.confirmed:
                continue
            try:
                done = await self.connector.cancel(order.id, order.symbol)
                final = done.order
                if final is None or final.is_open:
                    final = await self.connector.fetch_order(order.id, order.symbol)
            except Recoverable as fault:
                left.append((order.symbol, f"orphan {order.id} not cancelled: {fault.kind}"))
                continue
            self.book.update(final)
        return left

    def _keeps(self, order: Order, purpose: str) -> bool:
        """Whether the bot manages `order` as the purpose its id names (else: an orphan)."""
        if order.side is Side.BUY:
            return purpose in _BUYS
        if not order.is_open:
            return True  # a finished sell: its fills are applied, nothing rests to manage
        if order.symbol not in self.book.positions:
            return False
        return not any(t.side is Side.SELL for t in self.book.open_orders(symbol=order.symbol))
