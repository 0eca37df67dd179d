"""The trader's own book: the positions it opened and the orders it placed, kept in the store.

Every order is recorded before it goes out (a placeholder under its client order id) and after
(the exchange's order), so a crash between the two is found again by the client id on restart.
Fills are applied as deltas of an order's `filled`, whoever saw them (the placement answer, a
sync, a cancel), so a fill is never counted twice. A position is closed in one ClosedTrade when
what is left of it is dust; that round trip is what the loop guard counts.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from trading.clock import Clock
from trading.events import Notify, TradeClosed, TradeOpened
from trading.models import Market, Order, OrderRequest, OrderStatus, Position, Side
from trading.modes import Purpose
from trading.store import ClosedTrade, Store

_TAGS = {
    Purpose.ENTRY: "e",
    Purpose.EXIT: "x",
    Purpose.PROTECT: "p",
    Purpose.STOP: "s",
    Purpose.KILL: "k",
    Purpose.MANUAL: "m",
    Purpose.FAILSAFE: "f",
}
EPSILON = 1e-12

# Client order ids: "cb" + purpose tag + tick + run, 18 lowercase letters and digits. 18 is
# Kraken's limit for free text (cl_ord_id) and OKX takes only letters and digits (clOrdId);
# Binance, Bybit and Coinbase take them too. The tick is the time in ms, bumped by one when two
# orders share a millisecond, so a run never repeats an id; the run part is random, drawn once
# per run, so two runs differ even at the same tick (a fake clock in tests does that). Fixed
# widths need no separator; the tick wraps after 89 years.
CLIENT_ID_PREFIX = "cb"
_TICK_WIDTH, _RUN_WIDTH = 8, 7
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    """`n` modulo 36**width, in exactly `width` base-36 digits."""
    n %= 36**width
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out


def client_id_purpose(client_order_id: str | None) -> Purpose | None:
    """The purpose an id of ours was made for (None: not one of ours)."""
    if not client_order_id or not client_order_id.startswith(CLIENT_ID_PREFIX):
        return None
    tag = client_order_id[len(CLIENT_ID_PREFIX) : len(CLIENT_ID_PREFIX) + 1]
    return next((purpose for purpose, t in _TAGS.items() if t == tag), None)


def _base_of(symbol: str, markets: Mapping[str, Market]) -> str:
    market = markets.get(symbol)
    return market.base if market is not None else symbol.split("/")[0]


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
    applied: float = 0.0  # part of order.filled already applied to the positions
    reserved: float = 0.0  # base this open sell holds out of the free balance

    @property
    def client_id(self) -> str:
        return self.order.client_order_id or self.order.id


@dataclass
class _Tally:
    """What the exits of one position have sold so far."""

    amount: float = 0.0
    proceeds: float = 0.0
    fees: float = 0.0
    reason: str = ""


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
    ) -> None:
        self.label = label
        self.store = store
        self.clock = clock
        self.notify = notify
        self.quote = quote
        self._markets = markets
        self.log = log or logging.getLogger(f"trading.{label}")
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, Tracked] = {}  # by order id (a placeholder's id is its client id)
        self.last_exit_at: dict[str, float] = {}
        self.free: dict[str, float] = {}  # free balances: last sync, adjusted by our fills
        self._tallies: dict[str, _Tally] = {}
        self._exiting: set[str] = set()  # symbols with a sell on its way to the exchange
        self.on_close: Callable[[ClosedTrade], None] = lambda trade: None
        self._price_of = price_of or (lambda symbol: None)
        self._unvalued: set[str] = set()  # fee currencies already reported as not valued
        self._run = _base36(secrets.randbelow(36**_RUN_WIDTH), _RUN_WIDTH)
        self._tick = 0

    # -- loading

    def load(self, *, since: float) -> None:
        """Positions, open orders and recent exits as the store remembers them."""
        self.positions = {p.symbol: p for p in self.store.positions(self.label)}
        self.orders = {}
        for stored in self.store.orders(self.label, open_only=True):
            order = stored.order
            intent = self._intent(order.client_order_id)
            self.orders[order.id] = Tracked(
                order=order,
                purpose=stored.purpose,
                side=order.side,
                reason=intent.get("reason", ""),
                stop_loss=intent.get("stop_loss"),
                take_profit=intent.get("take_profit"),
                confirmed=order.id != order.client_order_id,
                applied=order.filled,
                reserved=order.remaining if order.side is Side.SELL else 0.0,
            )
        for trade in self.store.trades(self.label, since=since):
            self.last_exit_at[trade.symbol] = trade.closed_at

    # -- placing

    def new_client_id(self, purpose: str) -> str:
        """18 chars of [a-z0-9]: "cb", a purpose tag, the time in ms (never repeated in a run),
        this run's random part. Valid on Kraken, OKX, Binance, Bybit and Coinbase alike."""
        self._tick = max(int(self.clock.time() * 1000), self._tick + 1)
        tag = _TAGS.get(purpose, "o")
        return f"{CLIENT_ID_PREFIX}{tag}{_base36(self._tick, _TICK_WIDTH)}{self._run}"

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
        if purpose == Purpose.ENTRY or stop_loss is not None or take_profit is not None:
            intent = {"reason": reason, "stop_loss": stop_loss, "take_profit": take_profit}
            self.store.set_meta(f"intent:{self.label}:{cid}", json.dumps(intent))
        self.store.save_order(self.label, placeholder, purpose, at=self.clock.time())
        tracked = Tracked(
            placeholder,
            purpose,
            request.side,
            reason,
            stop_loss,
            take_profit,
            confirmed=False,
        )
        self.orders[cid] = tracked
        return tracked

    def placed(self, tracked: Tracked, order: Order) -> list[ClosedTrade]:
        """The exchange acknowledged the order: replace the placeholder, apply any fill."""
        old_id = tracked.order.id
        self.orders.pop(old_id, None)
        if old_id != order.id and not tracked.confirmed:
            # The placeholder is superseded by the exchange's record of the same order.
            gone = replace(tracked.order, status=OrderStatus.EXPIRED)
            self.store.save_order(self.label, gone, tracked.purpose, at=self.clock.time())
        tracked.confirmed = True
        tracked.order = order
        self.orders[order.id] = tracked
        if order.side is Side.SELL and order.is_open:
            # The exchange holds the whole order out of the free balance; fills draw on it.
            tracked.reserved = order.amount - tracked.applied
            self._adjust(order.symbol, base=-tracked.reserved)
        return self.update(order)

    def not_placed(self, tracked: Tracked, why: str) -> None:
        """The order never reached the book of the exchange."""
        self.orders.pop(tracked.order.id, None)
        failed = replace(tracked.order, status=OrderStatus.REJECTED)
        self.store.save_order(self.label, failed, tracked.purpose, at=self.clock.time())
        self.log.info("%s %s not placed: %s", tracked.purpose, tracked.order.symbol, why)

    # -- fills

    def update(self, order: Order) -> list[ClosedTrade]:
        """An order as the exchange reports it now; applies what filled since last seen."""
        tracked = self.orders.get(order.id)
        if tracked is None:
            return []
        delta = order.filled - tracked.applied
        closed: list[ClosedTrade] = []
        if delta > EPSILON:
            if tracked.side is Side.BUY:
                self._apply_buy(tracked, order, delta)
            else:
                closed += self._apply_sell(tracked, order, delta)
            tracked.applied = order.filled
        tracked.order = order
        self.store.save_order(self.label, order, tracked.purpose, at=self.clock.time())
        if not order.is_open:
            self.orders.pop(order.id, None)
            self._adjust(order.symbol, base=tracked.reserved)  # what it held is free again
            tracked.reserved = 0.0
            if tracked.side is Side.BUY and order.filled > EPSILON:
                self._announce_entry(tracked, order)
        return closed

    def _fee_in_quote(self, order: Order, fee: float, price: float) -> float:
        """What `fee` (in the order's fee currency) is worth in quote: at the fill price when
        charged in base, at its own market's price when charged in a third currency (BNB), and
        0 when no price is known: left out of PnL rather than valued at a wrong price."""
        currency = order.fee_currency
        if not fee or currency in (None, self.quote):
            return fee
        if currency == _base_of(order.symbol, self._markets()):
            return fee * price
        direct = self._price_of(f"{currency}/{self.quote}")
        if direct:
            return fee * direct
        inverse = self._price_of(f"{self.quote}/{currency}")
        if inverse:
            return fee / inverse
        if currency not in self._unvalued:
            self._unvalued.add(currency)
            self.log.warning(
                "fees paid in %s are left out of PnL: no %s/%s price to value them",
                currency,
                currency,
                self.quote,
            )
        return 0.0

    def _pay_fee(self, order: Order, fee: float) -> None:
        """The fee leaves the free balance of the currency it was charged in."""
        currency = order.fee_currency or self.quote
        self.free[currency] = self.free.get(currency, 0.0) - fee

    def _apply_buy(self, tracked: Tracked, order: Order, delta: float) -> None:
        market = self._markets().get(order.symbol)
        price = order.average or order.price or 0.0
        share = delta / order.filled if order.filled else 1.0
        fee = order.fee_cost * share
        fee_quote = self._fee_in_quote(order, fee, price)
        net = delta
        self.free[self.quote] = self.free.get(self.quote, 0.0) - delta * price
        if market is not None and order.fee_currency == market.base:
            net -= fee  # the exchange kept part of what we bought
        else:
            self._pay_fee(order, fee)
        if market is not None:
            self.free[market.base] = self.free.get(market.base, 0.0) + net
        now = self.clock.time()
        old = self.positions.get(order.symbol)
        if old is None:
            position = Position(
                account=self.label,
                symbol=order.symbol,
                amount=net,
                entry_price=price,
                opened_at=now,
                stop_loss=tracked.stop_loss,
                take_profit=tracked.take_profit,
                entry_order_id=order.id,
            )
        else:
            amount = old.amount + net
            average = (old.cost + net * price) / amount if amount > 0 else price
            position = replace(old, amount=amount, entry_price=average)
        self.positions[order.symbol] = position
        self.store.save_position(position)
        self._add_entry_fee(order.symbol, fee_quote)

    def _apply_sell(self, tracked: Tracked, order: Order, delta: float) -> list[ClosedTrade]:
        position = self.positions.get(order.symbol)
        price = order.average or order.price or 0.0
        share = delta / order.filled if order.filled else 1.0
        fee = order.fee_cost * share
        fee_quote = self._fee_in_quote(order, fee, price)
        from_reserved = min(delta, tracked.reserved)
        tracked.reserved -= from_reserved
        self._adjust(order.symbol, base=-(delta - from_reserved))
        market = self._markets().get(order.symbol)
        self.free[self.quote] = self.free.get(self.quote, 0.0) + delta * price
        self._pay_fee(order, fee)
        if position is None:
            self.log.warning("sell fill on %s without a position", order.symbol)
            return []
        tally = self._tallies.setdefault(order.symbol, _Tally())
        tally.amount += delta
        tally.proceeds += delta * price
        tally.fees += fee_quote
        tally.reason = tracked.reason or tracked.purpose
        position = replace(position, amount=max(0.0, position.amount - delta))
        self.positions[order.symbol] = position
        if is_dust(market, position.amount, price):
            return [self.close(order.symbol, price, tally.reason)]
        self.store.save_position(position)
        return []

    def _adjust(self, symbol: str, *, base: float) -> None:
        market = self._markets().get(symbol)
        if market is not None and base:
            self.free[market.base] = self.free.get(market.base, 0.0) + base

    # -- positions

    def close(self, symbol: str, price: float, reason: str) -> ClosedTrade:
        """Close a position: what its exits sold, plus what is left (dust, or a balance gone
        outside the bot) valued at `price`."""
        position = self.positions.pop(symbol)
        tally = self._tallies.pop(symbol, _Tally())
        rest = position.amount
        amount = tally.amount + rest
        proceeds = tally.proceeds + rest * price
        entry_fee = self._entry_fee(symbol)
        fees = tally.fees + entry_fee
        cost = position.entry_price * amount
        pnl = proceeds - cost - fees
        now = self.clock.time()
        exit_price = proceeds / amount if amount > 0 else price
        trade = ClosedTrade(
            account=self.label,
            symbol=symbol,
            amount=amount,
            entry_price=position.entry_price,
            exit_price=exit_price,
            opened_at=position.opened_at,
            closed_at=now,
            pnl=pnl,
            fees=fees,
            reason=reason or "exit",
        )
        self.store.add_trade(trade)
        self.store.delete_position(self.label, symbol)
        self.store.set_meta(self._fee_key(symbol), "0")
        self.last_exit_at[symbol] = now
        self.notify(
            TradeClosed(
                account=self.label,
                at=now,
                symbol=symbol,
                amount=amount,
                price=exit_price,
                pnl=pnl,
                pnl_pct=100.0 * pnl / cost if cost > 0 else 0.0,
                reason=trade.reason,
            )
        )
        self.log.info(
            "closed %s %.8g at %.8g: pnl %.2f (%s)", symbol, amount, exit_price, pnl, reason
        )
        self.on_close(trade)
        return trade

    def shrink(self, symbol: str, amount: float) -> None:
        """The balance holds less than the position: the position is what is really there."""
        position = replace(self.positions[symbol], amount=amount)
        self.positions[symbol] = position
        self.store.save_position(position)

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

    def exiting(self) -> frozenset[str]:
        """Symbols with a sell in flight or sent with an unknown outcome: no second exit until
        it is resolved, or the two could sell more than the position."""
        unsure = {
            t.order.symbol for t in self.orders.values() if t.side is Side.SELL and not t.confirmed
        }
        return frozenset(self._exiting | unsure)

    def pending_entries(self) -> frozenset[str]:
        return frozenset(t.order.symbol for t in self.orders.values() if t.side is Side.BUY)

    # -- small persistence helpers

    def _announce_entry(self, tracked: Tracked, order: Order) -> None:
        position = self.positions.get(order.symbol)
        price = order.average or order.price or 0.0
        self.notify(
            TradeOpened(
                account=self.label,
                at=self.clock.time(),
                symbol=order.symbol,
                amount=position.amount if position else order.filled,
                price=price,
                cost=order.filled * price,
                reason=tracked.reason or tracked.purpose,
            )
        )
        self.log.info(
            "opened %s %.8g at %.8g (%s)", order.symbol, order.filled, price, tracked.reason
        )

    def _intent(self, client_id: str | None) -> dict:
        if not client_id:
            return {}
        raw = self.store.get_meta(f"intent:{self.label}:{client_id}")
        return json.loads(raw) if raw else {}

    def _fee_key(self, symbol: str) -> str:
        return f"entry_fee:{self.label}:{symbol}"

    def _entry_fee(self, symbol: str) -> float:
        raw = self.store.get_meta(self._fee_key(symbol))
        return float(raw) if raw else 0.0

    def _add_entry_fee(self, symbol: str, fee: float) -> None:
        self.store.set_meta(self._fee_key(symbol), repr(self._entry_fee(symbol) + fee))
