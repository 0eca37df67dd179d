"""Fills in numbers, for the book: the share of an order's fee a fill carries and what it is
worth in quote, how a fill moves the free balances and the position, and what the store keeps
about a position beside its row (the entry's fees, the running tally of its exits) until it
closes into a trade. The Book calls these inside one of its changes, so they commit with the rest
of the fill.

A fee is valued at the fill price when charged in the traded coin, at its own market's price when
charged in a third currency (BNB on ETH/USDT), and at 0 when no price is known: left out of PnL
rather than valued at a wrong price.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

from trading.models import Market, Order, Position, Side
from trading.store import ClosedTrade, Store


@dataclass(frozen=True)
class Fill:
    """What of an order filled since the store last recorded it."""

    symbol: str
    amount: float  # in base
    price: float
    fee: float  # its share of the order's fee, in `fee_currency`
    fee_currency: str
    fee_quote: float  # that fee valued in quote (0: no price to value it)


@dataclass(frozen=True)
class Tally:
    """What the exits of one position have sold so far. Stored with each fill, so a position
    closed after a restart still counts the exits that came before."""

    amount: float = 0.0
    proceeds: float = 0.0
    fees: float = 0.0
    reason: str = ""

    def plus(self, fill: Fill, reason: str) -> Tally:
        return Tally(
            self.amount + fill.amount,
            self.proceeds + fill.amount * fill.price,
            self.fees + fill.fee_quote,
            reason,
        )

    def close(
        self, position: Position, price: float, entry_fee: float, reason: str, at: float
    ) -> ClosedTrade:
        """The round trip: what the exits sold, plus what is left of `position` (dust, or a
        balance gone outside the bot) valued at `price`; fees include the entry's."""
        amount = self.amount + position.amount
        proceeds = self.proceeds + position.amount * price
        fees = self.fees + entry_fee
        return ClosedTrade(
            account=position.account,
            symbol=position.symbol,
            amount=amount,
            entry_price=position.entry_price,
            exit_price=proceeds / amount if amount > 0 else price,
            opened_at=position.opened_at,
            closed_at=at,
            pnl=proceeds - position.entry_price * amount - fees,
            fees=fees,
            reason=reason or "exit",
        )

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: str | None) -> Tally:
        return cls(**json.loads(raw)) if raw else cls()


def charged(order: Order, recorded: Order | None) -> Order:
    """`order` with the fee charged for it so far: a look with less of it (a REST read that
    leaves out what the stream said) does not make the record forget it."""
    if recorded is None or recorded.fee_cost <= order.fee_cost:
        return order
    if not _same_fee_currency(order, recorded):
        return order
    return replace(order, fee_cost=recorded.fee_cost, fee_currency=recorded.fee_currency)


def _same_fee_currency(order: Order, recorded: Order) -> bool:
    return order.fee_currency in (None, recorded.fee_currency) or recorded.fee_currency is None


class Fills:
    """One account's fills in numbers. `price_of(symbol)` is the last known price of a market
    (None: unknown); it values fees charged in a third currency."""

    def __init__(
        self,
        label: str,
        store: Store,
        *,
        quote: str,
        markets: Callable[[], Mapping[str, Market]],
        price_of: Callable[[str], float | None],
        log: logging.Logger,
    ) -> None:
        self.label = label
        self.store = store
        self.quote = quote
        self._markets = markets
        self._price_of = price_of
        self.log = log
        self._unvalued: set[str] = set()  # fee currencies already reported as not valued

    def of(self, order: Order, delta: float, recorded: Order | None = None) -> Fill:
        """The fill of `delta` base (0: only a fee reported late), as part of `order` as the
        exchange reports it now, `recorded` being the store's last record of it. Its fee is
        what the order's fee grew by since that record, so a look without the fee (a pushed
        fill's) is made good by the next that has it; in another currency than the record's,
        its share of the order's fee."""
        price = order.average or order.price or 0.0
        if recorded is not None and recorded.fee_cost and not _same_fee_currency(order, recorded):
            fee = order.fee_cost * (delta / order.filled if order.filled else 1.0)
        else:
            fee = max(0.0, order.fee_cost - (recorded.fee_cost if recorded is not None else 0.0))
        currency = order.fee_currency or self.quote
        valued = self._in_quote(order.symbol, currency, fee, price)
        return Fill(order.symbol, delta, price, fee, currency, valued)

    def bought(
        self, free: dict[str, float], old: Position | None, opened: Position, fill: Fill
    ) -> Position:
        """The position after a buy: `old` grown at the average price, or else `opened` with
        what was bought. Moves the free balances and adds the fee to the entry's; a fee the
        exchange kept out of the coins bought leaves the position smaller."""
        market = self._markets().get(fill.symbol)
        free[self.quote] = free.get(self.quote, 0.0) - fill.amount * fill.price
        net = fill.amount
        if market is not None and fill.fee_currency == market.base:
            net -= fill.fee
        else:
            free[fill.fee_currency] = free.get(fill.fee_currency, 0.0) - fill.fee
        self.adjust(free, fill.symbol, net)
        fees = self._entry_fee(fill.symbol) + fill.fee_quote
        self.store.set_meta(self._fee_key(fill.symbol), repr(fees))
        if old is None:
            return replace(opened, amount=net, entry_price=fill.price)
        amount = old.amount + net
        average = (old.cost + net * fill.price) / amount if amount > 0 else fill.price
        return replace(old, amount=amount, entry_price=average)

    def late_fee(
        self, free: dict[str, float], positions: dict[str, Position], fill: Fill, side: Side
    ) -> None:
        """A fee reported after its fill was applied without it: the free balance pays it and
        the open position counts it (a buy's entry fee, less of the coin where it was charged
        in it; a sell's exits). A position closed meanwhile keeps its trade as recorded."""
        free[fill.fee_currency] = free.get(fill.fee_currency, 0.0) - fill.fee
        position = positions.get(fill.symbol)
        if position is None:
            return
        if side is Side.SELL:
            self.exited(fill, self._tally(fill.symbol).reason)
            return
        fees = self._entry_fee(fill.symbol) + fill.fee_quote
        self.store.set_meta(self._fee_key(fill.symbol), repr(fees))
        market = self._markets().get(fill.symbol)
        if market is not None and fill.fee_currency == market.base:
            position = replace(position, amount=max(0.0, position.amount - fill.fee))
            self.store.save_position(position)
            positions[fill.symbol] = position

    def sold(self, free: dict[str, float], fill: Fill, reserved: float) -> None:
        """Move the free balances for a sell, `reserved` of whose base the open order already
        held out of them."""
        self.adjust(free, fill.symbol, -(fill.amount - reserved))
        free[self.quote] = free.get(self.quote, 0.0) + fill.amount * fill.price
        free[fill.fee_currency] = free.get(fill.fee_currency, 0.0) - fill.fee

    def exited(self, fill: Fill, reason: str) -> Tally:
        """Add a sell to its position's exits so far."""
        tally = self._tally(fill.symbol).plus(fill, reason)
        self.store.set_meta(self._tally_key(fill.symbol), tally.dumps())
        return tally

    def adjust(self, free: dict[str, float], symbol: str, base: float) -> None:
        """Move `base` of a market's base currency into (or out of) the free balance."""
        market = self._markets().get(symbol)
        if market is not None and base:
            free[market.base] = free.get(market.base, 0.0) + base

    def close(self, position: Position, price: float, reason: str, at: float) -> ClosedTrade:
        """Record the round trip of a position whose row is gone, and start the next afresh."""
        symbol = position.symbol
        trade = self._tally(symbol).close(position, price, self._entry_fee(symbol), reason, at)
        self.store.add_trade(trade)
        self.store.set_meta(self._fee_key(symbol), "0")
        self.store.set_meta(self._tally_key(symbol), Tally().dumps())
        return trade

    def _fee_key(self, symbol: str) -> str:
        return f"entry_fee:{self.label}:{symbol}"

    def _entry_fee(self, symbol: str) -> float:
        raw = self.store.get_meta(self._fee_key(symbol))
        return float(raw) if raw else 0.0

    def _tally_key(self, symbol: str) -> str:
        return f"exit_tally:{self.label}:{symbol}"

    def _tally(self, symbol: str) -> Tally:
        return Tally.loads(self.store.get_meta(self._tally_key(symbol)))

    def _in_quote(self, symbol: str, currency: str, fee: float, price: float) -> float:
        if not fee or currency == self.quote:
            return fee
        market = self._markets().get(symbol)
        if currency == (market.base if market is not None else symbol.split("/")[0]):
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
