"""What the book tells when a change of it is committed: a trade opened, a trade closed.

Apart from trading/book.py because this is how a change is told (events and log lines), not what
it writes; the book hands each announcement to its change (trading/book_change.py), which sends
it only once the store committed.
"""

from __future__ import annotations

import logging

from trading.clock import Clock
from trading.events import Notify, TradeClosed, TradeOpened
from trading.models import Order, Position
from trading.store import ClosedTrade


class BookNews:
    """One account's announcements of its trades."""

    def __init__(self, label: str, *, clock: Clock, notify: Notify, log: logging.Logger) -> None:
        self.label = label
        self.clock = clock
        self.notify = notify
        self.log = log

    def opened(self, order: Order, position: Position | None, reason: str, purpose: str) -> None:
        """An entry order finished with a fill: the position it opened (or added to)."""
        price = order.average or order.price or 0.0
        self.notify(
            TradeOpened(
                account=self.label,
                at=self.clock.time(),
                symbol=order.symbol,
                amount=position.amount if position else order.filled,
                price=price,
                cost=order.filled * price,
                reason=reason or purpose,
                stop_loss=position.stop_loss if position else None,
                take_profit=position.take_profit if position else None,
            )
        )
        self.log.info("opened %s %.8g at %.8g (%s)", order.symbol, order.filled, price, reason)

    def closed(self, trade: ClosedTrade) -> None:
        cost = trade.entry_price * trade.amount
        self.notify(
            TradeClosed(
                account=self.label,
                at=trade.closed_at,
                symbol=trade.symbol,
                amount=trade.amount,
                price=trade.exit_price,
                pnl=trade.pnl,
                pnl_pct=100.0 * trade.pnl / cost if cost > 0 else 0.0,
                reason=trade.reason,
            )
        )
        self.log.info(
            "closed %s %.8g at %.8g: pnl %.2f (%s)",
            trade.symbol,
            trade.amount,
            trade.exit_price,
            trade.pnl,
            trade.reason,
        )
