"""The paper exchange's book: one account's balances and orders, and how each order fills.

- market orders fill at once at ask (buy) / bid (sell), moved against the taker by `slippage`;
- limit orders rest OPEN with funds reserved (quote for buys, base for sells) and fill at the
  limit price once a ticker crosses it (buy: ask <= limit; sell: bid >= limit);
- stop sells (STOP_MARKET, STOP_LIMIT) rest OPEN with the base reserved, like a limit sell,
  until the market trades at or below the stop price. Finding that moment is the exchange's
  part (trading/venues/paper.py watches the price path); `trigger` gets the ticker of that moment:
  a STOP_MARKET then sells like a market order, never above its trigger; a STOP_LIMIT becomes a
  limit sell at its price, filled at once if the bid is at or above it, else resting as a limit.
  A sell stop at or above the last price is refused, as Binance refuses it ("Stop price would
  trigger immediately"). Buy stops are refused: the bot is long-only;
- an OCO sell rests as a limit at its price and as a stop-market at its trigger on the same
  reserved coins: the trigger sells it all like a STOP_MARKET, a crossing fills it as a limit,
  and its first fill, whole or partial, cancels the stop (as Binance's order list does);
- with `fill_share` below 1, each crossing of a resting limit fills only that share of it (a
  thin book's partial fills);
- the fee is `fee_rate` of the notional, in the quote currency.

What a request may ask (lot size, tick, minimum amount, a stop's trigger) is checked first, by
trading/venues/paper_terms.py; the book checks what depends on the account.

Nothing here awaits, so a change is whole before another call of the exchange can run.

`snapshot()` is the whole account as plain data and `restore()` takes it back, for the paper
account kept on disk (trading/venues/paper_state.py). Between two saves the book remembers the
orders it changed (`unsaved()`): a closed order never changes again, so those and the balances
are all a save has to write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from trading.errors import DuplicateOrder, InsufficientFunds, Rejected
from trading.models import (
    Balance,
    Market,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
)
from trading.venues.paper_terms import Terms, checked_terms, floor_to, round_to

DUST = 1e-12


@dataclass(slots=True)
class PaperOrder:
    """An order as the exchange keeps it (mutable until it closes)."""

    id: str
    request: OrderRequest
    market: Market
    amount: float
    price: float | None  # the limit, once the order trades as a limit
    stop_price: float | None
    timestamp: float
    status: OrderStatus = OrderStatus.OPEN
    filled: float = 0.0
    average: float | None = None
    fee_cost: float = 0.0
    reserved: float = 0.0  # in reserve_currency while open
    triggered: bool = False  # a stop whose trigger the market reached
    watched_until: float = 0.0  # a resting stop: the clock time its price path was checked to

    @property
    def reserve_currency(self) -> str:
        return self.market.quote if self.request.side is Side.BUY else self.market.base

    @property
    def waiting_stop(self) -> bool:
        """A stop still waiting for its trigger."""
        return (
            self.stop_price is not None and not self.triggered and self.status is OrderStatus.OPEN
        )

    @property
    def resting_limit(self) -> bool:
        """Trades as a limit at `price` when the market crosses it (an OCO's limit too)."""
        oco = self.request.type is OrderType.OCO
        return self.price is not None and (oco or not self.waiting_stop)

    def snapshot(self) -> Order:
        return Order(
            id=self.id,
            symbol=self.market.symbol,
            side=self.request.side,
            type=self.request.type,
            amount=self.amount,
            filled=self.filled,
            status=self.status,
            timestamp=self.timestamp,
            client_order_id=self.request.client_order_id,
            price=self.price,
            stop_price=self.stop_price,
            average=self.average,
            fee_cost=self.fee_cost,
            fee_currency=self.market.quote,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready data (enums as their values)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["request"] = asdict(self.request)
        data["market"] = asdict(self.market)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PaperOrder:
        request = dict(data["request"])
        request["side"] = Side(request["side"])
        request["type"] = OrderType(request["type"])
        values = dict(data, request=OrderRequest(**request), market=Market(**data["market"]))
        values["status"] = OrderStatus(data["status"])
        return cls(**values)


def _crosses(buy: bool, price: float, ticker: Ticker) -> bool:
    """Whether a limit order at `price` trades against this ticker."""
    return ticker.ask <= price if buy else ticker.bid >= price


class PaperBook:
    """Balances with reservations and every order the account ever placed."""

    def __init__(
        self,
        *,
        venue: str,
        quote: str,
        balances: dict[str, float],
        fee_rate: float,
        slippage: float,
        fill_share: float = 1.0,
    ) -> None:
        self._venue = venue
        self._quote = quote
        self._totals = dict(balances)
        self._fee_rate = fee_rate
        self._slippage = slippage
        self._fill_share = fill_share
        self._orders: dict[str, PaperOrder] = {}  # every accepted order, in creation order
        self._open: dict[str, PaperOrder] = {}
        self._by_client: dict[tuple[str, str], PaperOrder] = {}
        self._next_id = 1
        self._unsaved: dict[str, PaperOrder] = {}  # changed since `saved()`
        self.dead_man_deadline: float | None = None  # the exchange's cancel-all-after, armed
        self.on_change: Callable[[str], None] | None = None  # told each changed order's id

    # -- the account as data ------------------------------------------------------------------

    def head(self) -> dict[str, Any]:
        """All but the orders: what a save writes beside the changed ones."""
        return {
            "balances": dict(self._totals),
            "next_id": self._next_id,
            "dead_man_deadline": self.dead_man_deadline,
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole account: balances, the id counter and every order, in creation order."""
        return {**self.head(), "orders": [o.to_dict() for o in self._orders.values()]}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Become the account `snapshot` describes (nothing unsaved)."""
        orders = [PaperOrder.from_dict(data) for data in snapshot["orders"]]
        self._totals = {str(c): float(v) for c, v in snapshot["balances"].items()}
        self._next_id = int(snapshot["next_id"])
        self.dead_man_deadline = snapshot["dead_man_deadline"]
        self._orders = {o.id: o for o in orders}
        self._open = {o.id: o for o in orders if o.status is OrderStatus.OPEN}
        self._by_client = {
            (o.market.symbol, o.request.client_order_id): o
            for o in orders
            if o.request.client_order_id
        }
        self._unsaved = {}

    def unsaved(self) -> list[PaperOrder]:
        """The orders changed since the last `saved()`."""
        return list(self._unsaved.values())

    def saved(self) -> None:
        self._unsaved = {}

    def _touch(self, order: PaperOrder) -> None:
        self._unsaved[order.id] = order
        if self.on_change is not None:
            self.on_change(order.id)

    # -- reading ----------------------------------------------------------------------------

    def all_orders(self) -> list[PaperOrder]:
        return list(self._orders.values())

    def open_orders(self) -> list[PaperOrder]:
        return list(self._open.values())

    def waiting_stops(self) -> Iterator[PaperOrder]:
        return (o for o in list(self._open.values()) if o.waiting_stop)

    def get(self, order_id: str) -> PaperOrder | None:
        return self._orders.get(order_id)

    def by_client(self, symbol: str, client_order_id: str) -> PaperOrder | None:
        return self._by_client.get((symbol, client_order_id))

    def balance(self) -> Balance:
        currencies = [c for c, v in self._totals.items() if v > 0 or c == self._quote]
        return Balance(
            free={c: self._free(c) for c in currencies},
            total={c: self._totals.get(c, 0.0) for c in currencies},
        )

    # -- orders -------------------------------------------------------------------------------

    def accept(
        self, request: OrderRequest, market: Market, ticker: Ticker, *, stamp: float, now: float
    ) -> PaperOrder:
        """Validate, then book (stamped `stamp` by the exchange's clock; a stop is watched from
        clock time `now`)."""
        terms = self._checked_terms(request, market, ticker)
        buy = request.side is Side.BUY
        fill_price: float | None = None
        if request.type is OrderType.OCO and terms.price is not None:
            fill_price = terms.price if _crosses(buy, terms.price, ticker) else None
            reference = terms.price
        elif terms.stop_price is not None:  # rests until triggered
            reference = terms.price or terms.stop_price
        elif terms.price is not None:  # limit: fills at its own price, now or later
            fill_price = terms.price if _crosses(buy, terms.price, ticker) else None
            reference = terms.price
        else:
            fill_price = self._market_price(buy, ticker)
            reference = fill_price
        cost = terms.amount * reference
        if cost < market.min_cost:
            raise self._rejected(
                f"order cost {cost:.8g} {market.quote} is under the minimum {market.min_cost:g}"
            )
        need = cost * (1 + self._fee_rate) if buy else terms.amount
        currency = market.quote if buy else market.base
        free = self._free(currency)
        if need > free * (1 + 1e-12) + DUST:
            raise InsufficientFunds(
                f"insufficient funds: need {need:.8g} {currency}, free {free:.8g}",
                venue=self._venue,
                call="create_order",
            )
        order = self._book(request, market, terms, stamp)
        if fill_price is not None:
            self._fill(order, fill_price)
        else:
            order.reserved = need
            order.watched_until = now
            self._open[order.id] = order
        return order

    def match(self, tickers: dict[str, Ticker], *, stops: bool) -> None:
        """Fill the resting limits these tickers cross; with `stops`, also trigger the waiting
        stops whose last price is at or below the trigger (for a feed without a price path)."""
        for order in list(self._open.values()):
            ticker = tickers.get(order.market.symbol)
            if ticker is None:
                continue
            if order.waiting_stop:
                assert order.stop_price is not None
                if stops and ticker.last <= order.stop_price:
                    self.trigger(order, ticker)
                    continue
            if order.resting_limit and _crosses(
                order.request.side is Side.BUY, order.price or 0.0, ticker
            ):
                self._fill(order, order.price or 0.0, self._fill_share)

    def trigger(self, order: PaperOrder, ticker: Ticker) -> None:
        """The market reached the stop's trigger; `ticker` is the market at that moment."""
        assert order.stop_price is not None
        order.triggered = True
        self._touch(order)
        if order.request.type in (OrderType.STOP_MARKET, OrderType.OCO):
            self._fill(order, min(ticker.bid, order.stop_price) * (1 - self._slippage))
        elif order.price is not None and _crosses(False, order.price, ticker):
            self._fill(order, order.price)

    def cancel(self, order: PaperOrder) -> None:
        self._finish(order, OrderStatus.CANCELED)

    def _market_price(self, buy: bool, ticker: Ticker) -> float:
        return ticker.ask * (1 + self._slippage) if buy else ticker.bid * (1 - self._slippage)

    def _checked_terms(self, request: OrderRequest, market: Market, ticker: Ticker) -> Terms:
        terms = checked_terms(request, market, ticker, venue=self._venue)
        client_id = request.client_order_id
        if client_id and (market.symbol, client_id) in self._by_client:
            raise DuplicateOrder(
                f"duplicate client order id {client_id}", venue=self._venue, call="create_order"
            )
        return terms

    def _book(
        self, request: OrderRequest, market: Market, terms: Terms, stamp: float
    ) -> PaperOrder:
        order_id = f"P{self._next_id}"
        self._next_id += 1
        order = PaperOrder(
            id=order_id,
            request=request,
            market=market,
            amount=terms.amount,
            price=terms.price,
            stop_price=terms.stop_price,
            timestamp=stamp,
        )
        self._orders[order_id] = order
        self._touch(order)
        if request.client_order_id:
            self._by_client[(market.symbol, request.client_order_id)] = order
        return order

    def _fill(self, order: PaperOrder, price: float, share: float = 1.0) -> None:
        """Fill `share` of the order's amount, floored to the lot size; all that is left when
        that share is nothing or covers the rest."""
        self._touch(order)
        order.triggered = order.triggered or order.request.type is OrderType.OCO  # stop leg gone
        market = order.market
        left = order.amount - order.filled
        part = floor_to(order.amount * share, market.amount_step)
        last = part <= DUST or part >= left - DUST
        amount = left if last else part
        cost = amount * price
        fee = cost * self._fee_rate
        buy = order.request.side is Side.BUY
        if buy:
            self._credit(market.quote, -(cost + fee))
            self._credit(market.base, amount)
        else:
            self._credit(market.base, -amount)
            self._credit(market.quote, cost - fee)
        if order.filled and order.average is not None:
            order.average = (order.average * order.filled + price * amount) / (
                order.filled + amount
            )
        else:
            order.average = price
        order.fee_cost += fee
        if last:
            order.filled = order.amount
            self._finish(order, OrderStatus.CLOSED)
            return
        order.filled = round_to(order.filled + amount, market.amount_step)
        order.reserved -= cost * (1 + self._fee_rate) if buy else amount

    def _finish(self, order: PaperOrder, status: OrderStatus) -> None:
        self._touch(order)
        order.status = status
        order.reserved = 0.0
        self._open.pop(order.id, None)

    # -- balances -----------------------------------------------------------------------------

    def _credit(self, currency: str, delta: float) -> None:
        total = round(self._totals.get(currency, 0.0) + delta, 12)  # no 0.020000000000000004
        self._totals[currency] = 0.0 if abs(total) < DUST * max(1.0, abs(delta)) else total

    def _reserved(self, currency: str) -> float:
        return sum(o.reserved for o in self._open.values() if o.reserve_currency == currency)

    def _free(self, currency: str) -> float:
        return self._totals.get(currency, 0.0) - self._reserved(currency)

    def _rejected(self, message: str) -> Rejected:
        return Rejected(message, venue=self._venue, call="create_order")
