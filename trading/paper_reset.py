"""Starting a paper or dry-run account afresh on purpose (/reset, PAPER_RESET=true).

The simulated account goes back to its starting balance with no orders, and the bot's own book
of it (positions, open orders) is cleared with it, in one store transaction and without a trade:
nothing was sold, so the PnL history stays what it was. The book goes first: if the account
then cannot be reset, its coins are held outside the bot, which never sells them; the other
order could leave positions whose coins are gone, which the reconciliation would close as sold
outside the bot, recording trades that never happened.

Only a simulated account can start afresh; a live one is refused.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from trading.errors import Fault
from trading.models import Balance, OrderStatus
from trading.parts import Parts
from trading.results import ResetResult
from trading.store_schema import StoreError
from trading.venues.paper import PaperExchange
from trading.venues.paper_state import PaperStateError

NOT_SIMULATED = "only a paper or dry-run account can be reset"


def resettable(trader) -> bool:
    """Whether the trader's account is simulated (paper, or dry-run on live prices)."""
    return isinstance(trader.connector.venue, PaperExchange)


def refused(parts: Parts, reason: str) -> ResetResult:
    return ResetResult(account=parts.label, ok=False, mode=parts.state.mode, reason=reason)


def reset_account(parts: Parts) -> ResetResult:
    """Clear the trader's book, then start its simulated account afresh. No exchange request
    and no lock: the caller holds the trader's lock, or nothing runs yet."""
    venue = parts.connector.venue
    if not isinstance(venue, PaperExchange):
        return refused(parts, NOT_SIMULATED)
    book = parts.book
    positions = tuple(book.positions.values())
    orders = tuple(t.order for t in book.orders.values())
    before = _held(venue.peek_balance())
    try:
        _clear_book(parts)
    except (StoreError, sqlite3.Error) as exc:  # rolled back: the book is as it was
        return refused(parts, f"the bot's book could not be cleared, nothing changed: {exc}")
    reason, after = "", {}
    try:
        after = _held(venue.reset())
    except PaperStateError as exc:
        reason = f"the bot's book was cleared, the account was not reset: {exc}"
    return ResetResult(
        account=parts.label,
        ok=not reason,
        mode=parts.state.mode,
        reason=reason,
        positions=positions,
        open_orders=orders,
        before=before,
        after=after,
    )


def reset_at_start(parts: Parts, *, always: bool) -> ResetResult | None:
    """At start, once the book is restored: a simulated account kept on disk starts afresh when
    `always` (PAPER_RESET=true), or when its file held no account while the book remembers
    positions or orders on it (the file was removed, or predates saved accounts): those are
    dropped rather than closed as sold outside the bot. None when it continues as it is."""
    venue = parts.connector.venue
    if not isinstance(venue, PaperExchange) or not venue.kept:
        return None
    remembered = parts.book.positions or parts.book.orders
    if not always and (venue.restored or not remembered):
        return None
    return reset_account(parts)


def _clear_book(parts: Parts) -> None:
    """The positions deleted and the open orders recorded as cancelled, in one transaction;
    the book in memory follows once that is committed."""
    book, store = parts.book, parts.store
    now = parts.clock.time()
    with store.transaction():
        for position in book.positions.values():
            store.delete_position(book.label, position.symbol)
        for tracked in book.orders.values():
            gone = replace(tracked.order, status=OrderStatus.CANCELED)
            store.save_order(book.label, gone, tracked.purpose, at=now)
    for symbol in list(book.positions):
        book.sending(symbol, False)
    book.positions.clear()
    book.orders.clear()
    book.free.clear()


def _held(balance: Balance) -> dict[str, float]:
    return {currency: total for currency, total in balance.total.items() if total}


async def reset_paper(parts: Parts) -> ResetResult:
    """Start a paper or dry-run account afresh, under the trader's lock, then sync so nothing
    reads the old balance. Refused for a live account."""
    if not isinstance(parts.connector.venue, PaperExchange):
        return refused(parts, NOT_SIMULATED)

    async def body() -> ResetResult:
        result = reset_account(parts)
        try:
            await parts.account.sync()  # the fresh balance, before anything reads the old one
        except Fault as fault:
            parts.log.info("sync after the reset failed (the next cycle syncs): %s", fault)
        return result

    return await parts.locked(body, lambda why: refused(parts, why))
