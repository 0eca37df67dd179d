"""Sells of unknown outcome, and the stop put back beside one.

An exit whose answer never came (a timeout, an odd answer, a Fatal one) may have sold or not;
the reconciliation settles it by its client order id, and meanwhile no second exit of that
symbol goes out (trading/orders.py). The position's stop goes back at once beside it
(trading/guards.py): the exchange lets only one of the two hold the coins, so whichever it
took first is the one exit, and the other is refused for want of coins. A stop refused so is
not the venue refusing stops: it waits, without a page, for the reconciliation to settle the
exit. A stop of unknown outcome is the same: the next look sends a fresh one, which the
exchange refuses for coins if the one in doubt rests (chaos seeds 84, 97, 168: waiting for
the reconciliation instead left the position bare while the host died).
"""

from __future__ import annotations

from trading.book import Book
from trading.errors import Fault, InsufficientFunds
from trading.models import Side
from trading.modes import Purpose
from trading.risk import OrderIntent


def unsure_sells(book: Book, symbol: str) -> set[str]:
    """The client ids of `symbol`'s sells (exits and stops) sent with an unknown outcome."""
    return {
        t.client_id
        for t in book.open_orders(symbol=symbol)
        if t.side is Side.SELL and not t.confirmed
    }


def holds_coins(book: Book, intent: OrderIntent, fault: Fault) -> bool:
    """A stop refused for want of coins beside a sell of unknown outcome: that sell holds or
    took them."""
    return (
        intent.purpose is Purpose.GUARD
        and isinstance(fault, InsufficientFunds)
        and bool(unsure_sells(book, intent.symbol))
    )


def on_its_way(book: Book, symbol: str) -> str | None:
    """Why a new exit of `symbol` waits: one is going out, or was sent with an unknown outcome."""
    return f"{symbol}: an exit is already on its way" if symbol in book.exiting() else None
