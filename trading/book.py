"""The trader's own book: the positions it opened and the orders it placed, kept in the store.

Every order is recorded before it goes out (a placeholder under its client order id) and after
(the exchange's order), so a crash between the two is found again by the client id on restart.
Fills are applied as deltas of an order's `filled` over what the store recorded, whoever saw them
(the placement answer, a sync, a cancel), so a fill is never counted twice. A position is closed
in one ClosedTrade when what is left of it is dust; that round trip is what the loop guard counts.

Each change is whole (trading/book_change.py: one store transaction, rolled back in memory too,
announced once committed): a placement (placeholder expired, exchange order recorded, any fill
applied); a fill (the order's `filled`, the position, its fees and exits, the trade it may
close); a close (the position deleted and its trade recorded, the trade only if the store still
held the position, so no exit is recorded twice).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from trading.book_change import Changes
from trading.book_news import BookNews
from trading.client_ids import CLIENT_ID_PREFIX, ClientIds, client_id_purpose
from trading.clock import Clock
from trading.events import Notify
from trading.fills import Fill, Fills, charged
from trading.models import Market, Order, OrderRequest, OrderStatus, Position, Side
from trading.modes import Purpose, exit_reason
from trading.store import ClosedTrade, Store

# Client ids live in trading/client_ids.py; most code imports them from here.
__all__ = ["CLIENT_ID_PREFIX", "EPSILON", "Book", "Tracked", "client_id_purpose", "is_dust"]
EPSILON = 1e-12
KEEP_EXITS = 20  # recent exits per symbol, for the loop guard


def is_dust(market: Market | None, amount: float, price: float) -> bool:
    """Too little to sell: under the market's minimum amount or minimum notional."""
    if amount <= EPSILON:
        return True
    if market is None:
        return False
    return amount < market.min_amount or (price > 0 and amount * price < market.min_cost)


@dataclass
class Tracked:
    """An order of ours that is not finished yet, and what it was for."""

    order: Order
    purpose: str
    side: Side
    reason: str = ""
    stop_loss: float | None = None
    take_profit: float | None = None
    confirmed: bool = True  # False: sent with an unknown outcome (or before a crash)
    reserved: float = 0.0  # base this open sell holds out of the free balance

    @property
    def client_id(self) -> str:
        return self.order.client_order_id or self.order.id


class Book:
    """One account's positions and open orders, mirrored in the store.

    `price_of(symbol)` is the last known price of a market (None: unknown); it values fees
    charged in a third currency (BNB on ETH/USDT) through that currency's own market."""

    def __init__(
        self,
        label: str,
        *,
        store: Store,
        clock: Clock,
        notify: Notify,
        quote: str,
        markets: Callable[[], Mapping[str, Market]],
        log: logging.Logger | None = None,
        price_of: Callable[[str], float | None] | None = None,
        market_time: Callable[[], float] | None = None,
    ) -> None:
        self.label = label
        self.store = store
        self.clock = clock
        self.quote = quote
        self._markets = markets
        self.log = log or logging.getLogger(f"trading.{label}")
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, Tracked] = {}  # by order id (a placeholder's id is its client id)
        # When each symbol was last exited, and its recent exits, on the market's clock (paper
        # time in the paper demo): what the re-entry cooldown and the loop guard count in.
        self.market_time = market_time or clock.time
        self.last_exit_at: dict[str, float] = {}
        self.exits: dict[str, tuple[float, ...]] = {}
        self.free: dict[str, float] = {}  # free balances: last sync, adjusted by our fills
        self._exiting: set[str] = set()  # symbols with a sell on its way to the exchange
        self.on_close: Callable[[ClosedTrade], None] = lambda trade: None
        self._fills = Fills(
            label,
            store,
            quote=quote,
            markets=markets,
            price_of=price_of or (lambda symbol: None),
            log=self.log,
        )
        # A rolled-back change restores these in place: callers hold them across a change.
        self._changes = Changes(
            store,
            lambda: (
                (self.positions, self.orders, self.free, self.last_exit_at, self.exits),
                self.orders.values(),
            ),
        )
        self._ids = ClientIds(clock, store, label)
        self._news = BookNews(label, clock=clock, notify=notify, log=self.log)

    # -- loading

    def load(self, *, since: float) -> None:
        """Positions, open orders and recent exits as the store remembers them."""
        self.positions = {p.symbol: p for p in self.store.positions(self.label)}
        self.orders = {}
        for stored in self.store.orders(self.label, open_only=True):
            order = stored.order
            intent = self.intent(order.client_order_id)
            self.orders[order.id] = Tracked(
                order=order,
                purpose=stored.purpose,
                side=order.side,
                reason=intent.get("reason", ""),
                stop_loss=intent.get("stop_loss"),
                take_profit=intent.get("take_profit"),
                confirmed=order.id != order.client_order_id,
                reserved=order.remaining if order.side is Side.SELL else 0.0,
            )
        for trade in self.store.trades(self.label, since=since):
            self._exited(trade.symbol, trade.closed_at)

    # -- placing

    def new_client_id(self, purpose: str) -> str:
        """A client order id for a new order of this purpose (see trading/client_ids.py)."""
        return self._ids.new(purpose)

    def made_here(self, client_order_id: str | None) -> bool:
        """The id carries this account's tag: the bot sent it from this store, in any run."""
        return self._ids.ours(client_order_id)

    def pending(
        self,
        request: OrderRequest,
        purpose: str,
        *,
        reason: str = "",
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> Tracked:
        """Record an order about to be sent, under its client order id."""
        cid = request.client_order_id
        placeholder = Order(
            id=cid,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            amount=request.amount,
            filled=0.0,
            status=OrderStatus.OPEN,
            timestamp=self.clock.time(),
            client_order_id=cid,
            price=request.price,
        )
        tracked = Tracked(
            placeholder, purpose, request.side, reason, stop_loss, take_profit, confirmed=False
        )
        with self._changes.change():
            if purpose == Purpose.ENTRY or stop_loss is not None or take_profit is not None:
                intent = {"reason": reason, "stop_loss": stop_loss, "take_profit": take_profit}
                self.store.set_meta(f"intent:{self.label}:{cid}", json.dumps(intent))
            self.store.save_order(self.label, placeholder, purpose, at=self.clock.time())
            self.orders[cid] = tracked
        return tracked

    def placed(self, tracked: Tracked, order: Order) -> list[ClosedTrade]:
        """The exchange acknowledged the order: replace the placeholder, apply any fill."""
        if tracked.confirmed:
            # A lookup by client id (a sync, a kill's) adopted it while this answer was on its
            # way: older news of an order the book follows already.
            return self.update(order)
        with self._changes.change():
            old_id = tracked.order.id
            self.orders.pop(old_id, None)
            if old_id != order.id:
                # The placeholder is superseded by the exchange's record of the same order.
                gone = replace(tracked.order, status=OrderStatus.EXPIRED)
                self.store.save_order(self.label, gone, tracked.purpose, at=self.clock.time())
            tracked.confirmed = True
            self.orders[order.id] = tracked
            if order.side is Side.SELL and order.is_open:
                # The exchange holds the whole order out of the free balance; fills draw on it.
                tracked.reserved = order.amount - self._recorded_fill(order)
                self._fills.adjust(self.free, order.symbol, -tracked.reserved)
            return self.update(order)

    def not_placed(self, tracked: Tracked, why: str) -> None:
        """The order never reached the book of the exchange."""
        failed = replace(tracked.order, status=OrderStatus.REJECTED)
        with self._changes.change():
            self.store.save_order(self.label, failed, tracked.purpose, at=self.clock.time())
            self.orders.pop(tracked.order.id, None)
        self.log.info("%s %s not placed: %s", tracked.purpose, tracked.order.symbol, why)

    # -- fills

    def update(self, order: Order) -> list[ClosedTrade]:
        """An order as the exchange reports it now; applies what filled since the store last
        recorded it, in one transaction with the order's new state, and the fee it reports
        beyond the one recorded (a look without it came first). A report older than that record
        (less filled) changes nothing."""
        tracked = self.orders.get(order.id)
        if tracked is None:
            self._late_fee(order)
            return []
        with self._changes.change():
            stored = self.store.order(self.label, order.id)
            recorded = stored.order if stored is not None else None
            delta = order.filled - (recorded.filled if recorded is not None else 0.0)
            if delta < -EPSILON:
                return []  # an older look at the order than the one recorded: nothing new
            closed: list[ClosedTrade] = []
            fill = self._fills.of(order, max(0.0, delta), recorded)
            if delta <= EPSILON and fill.fee > EPSILON:
                self._fills.late_fee(self.free, self.positions, fill, tracked.side)
            elif delta > EPSILON and tracked.side is Side.BUY:
                self._apply_buy(tracked, order, fill)
            elif delta > EPSILON:
                closed += self._apply_sell(tracked, order, fill)
            order = charged(order, recorded)
            tracked.order = order
            self.store.save_order(self.label, order, tracked.purpose, at=self.clock.time())
            if not order.is_open:
                self.orders.pop(order.id, None)
                self._fills.adjust(self.free, order.symbol, tracked.reserved)  # free again
                tracked.reserved = 0.0
                if tracked.side is Side.BUY and order.filled > EPSILON:
                    self._changes.announce(lambda: self._announce_entry(tracked, order))
        return closed

    def _late_fee(self, order: Order) -> None:
        """A look at an order the book no longer follows (closed by a pushed fill) that adds
        only the fee the earlier look lacked: charged now."""
        stored = self.store.order(self.label, order.id)
        if stored is None or abs(order.filled - stored.order.filled) > EPSILON:
            return
        fill = self._fills.of(order, 0.0, stored.order)
        if fill.fee <= EPSILON:
            return
        with self._changes.change():
            self._fills.late_fee(self.free, self.positions, fill, order.side)
            order = charged(order, stored.order)
            self.store.save_order(self.label, order, stored.purpose, at=self.clock.time())

    def _recorded_fill(self, order: Order) -> float:
        """How much of `order` the store has applied already (none before its first record)."""
        stored = self.store.order(self.label, order.id)
        return stored.order.filled if stored is not None else 0.0

    def _apply_buy(self, tracked: Tracked, order: Order, fill: Fill) -> None:
        opened = Position(
            account=self.label,
            symbol=order.symbol,
            amount=0.0,
            entry_price=0.0,
            opened_at=self.clock.time(),
            stop_loss=tracked.stop_loss,
            take_profit=tracked.take_profit,
            entry_order_id=order.id,
            manual=tracked.purpose == Purpose.MANUAL,
        )
        position = self._fills.bought(self.free, self.positions.get(order.symbol), opened, fill)
        self.store.save_position(position)
        self.positions[order.symbol] = position

    def _apply_sell(self, tracked: Tracked, order: Order, fill: Fill) -> list[ClosedTrade]:
        reserved = min(fill.amount, tracked.reserved)
        tracked.reserved -= reserved
        self._fills.sold(self.free, fill, reserved)
        position = self.positions.get(order.symbol)
        if position is None:
            self.log.warning("sell fill on %s without a position", order.symbol)
            return []
        tally = self._fills.exited(fill, tracked.reason or exit_reason(tracked.purpose))
        position = replace(position, amount=max(0.0, position.amount - fill.amount))
        self.positions[order.symbol] = position
        if is_dust(self._markets().get(order.symbol), position.amount, fill.price):
            trade = self.close(order.symbol, fill.price, tally.reason)
            return [trade] if trade is not None else []
        self.store.save_position(position)
        return []

    # -- positions

    def close(self, symbol: str, price: float, reason: str) -> ClosedTrade | None:
        """Close a position: what its exits sold, plus what is left (dust, or a balance gone
        outside the bot) valued at `price`. None when the store no longer held it: closed
        already, and recorded then."""
        with self._changes.change():
            position = self.positions.pop(symbol)
            if not self.store.delete_position(self.label, symbol):
                self.log.error("%s was closed already: no second trade recorded", symbol)
                return None
            trade = self._fills.close(position, price, reason, self.clock.time())
            self._exited(symbol, self.market_time())
            self._changes.announce(lambda: self._announce_close(trade))
        return trade

    def _exited(self, symbol: str, at: float) -> None:
        self.last_exit_at[symbol] = at
        self.exits[symbol] = (*self.exits.get(symbol, ())[-(KEEP_EXITS - 1) :], at)

    def unlock(self, symbol: str) -> bool:
        """Forget a symbol's recent exits (its cooldown); False if there were none."""
        found = self.last_exit_at.pop(symbol, None) is not None
        self.exits.pop(symbol, None)
        return found

    def move_stop(self, symbol: str, stop_loss: float) -> None:
        """A new stop-loss for a position (trailing, break-even): its guard follows next."""
        self._revise(replace(self.positions[symbol], stop_loss=stop_loss))

    def shrink(self, symbol: str, amount: float) -> None:
        """The balance holds less than the position: the position is what is really there."""
        self._revise(replace(self.positions[symbol], amount=amount))

    def _revise(self, position: Position) -> None:
        with self._changes.change():
            self.store.save_position(position)
            self.positions[position.symbol] = position

    # -- views

    def markets(self) -> Mapping[str, Market]:
        return self._markets()

    def open_orders(
        self, *, symbol: str | None = None, purpose: str | None = None
    ) -> list[Tracked]:
        return [
            t
            for t in self.orders.values()
            if (symbol is None or t.order.symbol == symbol)
            and (purpose is None or t.purpose == purpose)
        ]

    def sending(self, symbol: str, sending: bool) -> None:
        """Mark a sell of `symbol` as in flight (no second exit may start meanwhile)."""
        if sending:
            self._exiting.add(symbol)
        else:
            self._exiting.discard(symbol)

    def in_flight(self) -> frozenset[str]:
        """Symbols with a sell on its way to the exchange right now (not yet answered)."""
        return frozenset(self._exiting)

    def exiting(self) -> frozenset[str]:
        """Symbols with a sell in flight or sent with an unknown outcome: no second exit until
        it is resolved, or the two could sell more than the position."""
        unsure = {
            t.order.symbol for t in self.orders.values() if t.side is Side.SELL and not t.confirmed
        }
        return frozenset(self._exiting | unsure)

    def pending_entries(self) -> frozenset[str]:
        return frozenset(t.order.symbol for t in self.orders.values() if t.side is Side.BUY)

    # -- announcements (trading/book_news.py) and small persistence helpers

    def _announce_entry(self, tracked: Tracked, order: Order) -> None:
        position = self.positions.get(order.symbol)
        self._news.opened(order, position, tracked.reason, tracked.purpose)

    def _announce_close(self, trade: ClosedTrade) -> None:
        self._news.closed(trade)
        self.on_close(trade)

    def intent(self, client_id: str | None) -> dict:
        """What an order was sent for (reason, stop_loss, take_profit), as recorded before it
        went out; empty when nothing was."""
        if not client_id:
            return {}
        raw = self.store.get_meta(f"intent:{self.label}:{client_id}")
        return json.loads(raw) if raw else {}
