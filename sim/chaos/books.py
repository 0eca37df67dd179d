"""The chaos referee's accounts: what the exchange holds against what the bot remembers, and
what belongs to the user, which the bot never touches. The Monitor (sim/chaos/referee.py) holds one
`Books` and calls it where each check can be made.

    every buy, when sent         never takes the bot's positions above MAX_POSITIONS or its
                                 exposure above MAX_EXPOSURE (the user's coins are not the bot's)
    after a fair sync            no position larger than the balance, no coins and no open order
                                 of ours the book does not manage
    after a restart's first      every order of ours: the store recorded as much filled as the
    fair sync, and at the end    exchange did (no fill applied twice, none lost); no round trip
                                 recorded twice, nor trades for more than the bot bought
    every cancel, dead man       never an order that is not the bot's; the exchange's
                                 cancel-all-after armed only while nothing but the bot's rests
    at the end of every cycle    the user's coins and resting orders are all still there (but
                                 for an order the dead man's deadline took before any sync of
                                 the bot listed it, or although the bot asked the exchange to
                                 disarm it since: the exchange's doing, counted)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Protocol

from trading.book import client_id_purpose, is_dust
from trading.engine import Trader
from trading.models import Market, Order, OrderRequest, OrderStatus, Side
from trading.settings import TradingSettings
from trading.venues.paper import PaperExchange

EXPOSURE_TOLERANCE = 0.02  # the gate prices at the bid, the check at the mid
DUST_MARGIN = 1.05  # holdings within 5 % of the market minimum count as dust (price rounding)
FILL_TOLERANCE = 1e-9  # relative: what two records of one fill may differ by (float sums)

Violation = Callable[[str, str], None]


class Outsider(Protocol):
    """The account's owner trading by hand beside the bot (sim/chaos/actors.py's User)."""

    coins: dict[str, float]  # currency -> amount held outside the bot, never sold by it
    orders: dict[str, str]  # id -> symbol of the resting orders only the user may cancel


class Books:
    """The bot's book and store against the exchange and the user's holdings, for one seed."""

    def __init__(
        self,
        settings: TradingSettings,
        paper: PaperExchange,
        violation: Violation,
        stats: Counter,
    ) -> None:
        self.settings = settings
        self.paper = paper
        self.violation = violation
        self.stats = stats
        self.trader: Trader | None = None
        self.outsider: Outsider | None = None
        self.ledger_due = False  # a restart happened: check the ledger at the next fair sync
        # Orders a lookup was refused for: the reconciler believes "unknown order" at once and
        # a refusal that repeats (the exchange's word), keeping the fill it knew, so an injected
        # lie about an order that still rests hides its later fills (reconcile.py's design).
        self.denied: set[str] = set()
        self._touched: set[str] = set()  # the user's orders found touched (reported once)
        self._disarms = 0  # the bot's attempts to disarm the dead man's switch
        self._disarms_before: dict[str, int] = {}  # the user's order id -> disarms before a
        #                                            sync of the bot first listed it

    def _user(self, currency: str) -> float:
        return self.outsider.coins.get(currency, 0.0) if self.outsider else 0.0

    # -- the caps, when a buy is sent

    def check_caps(self, request: OrderRequest) -> None:
        held, equity = self.holdings()
        cost = request.amount * self.paper.price(request.symbol)
        count = len(set(held) | {request.symbol})
        if count > self.settings.max_positions:
            self.violation(
                "positions above MAX_POSITIONS",
                f"buy {request.symbol} makes {count} > {self.settings.max_positions}",
            )
        exposure = (sum(held.values()) + cost) / equity if equity > 0 else float("inf")
        if exposure > self.settings.max_exposure + EXPOSURE_TOLERANCE:
            self.violation(
                "exposure above MAX_EXPOSURE",
                f"buy {request.symbol} for {cost:.2f} makes {exposure:.1%} of equity "
                f"{equity:.2f} > {self.settings.max_exposure:.0%}",
            )

    def holdings(self, totals: dict[str, float] | None = None) -> tuple[dict[str, float], float]:
        """(value of every non-dust holding of the bot by symbol, its equity), at mid prices,
        from the exchange's own balance less what the user holds."""
        trader = self.trader
        assert trader is not None
        totals = self.paper.peek_balance().total if totals is None else totals
        quote = self.settings.quote
        held: dict[str, float] = {}
        equity = totals.get(quote, 0.0)
        for symbol, market in (trader.connector.markets or {}).items():
            amount = totals.get(market.base, 0.0) - self._user(market.base)
            if amount <= 0 or market.quote != quote:
                continue
            price = self.paper.price(symbol)
            equity += amount * price
            if not dust(market, amount, price):
                held[symbol] = amount * price
        return held, equity

    # -- after a fair sync

    def against_exchange(self, totals: dict[str, float]) -> None:
        trader = self.trader
        assert trader is not None
        book = trader.book
        buying = {t.order.symbol for t in book.orders.values() if t.side is Side.BUY}
        for symbol, market in trader.connector.markets.items():
            total = totals.get(market.base, 0.0) - self._user(market.base)
            position = book.positions.get(symbol)
            amount = position.amount if position else 0.0
            if position is not None and total < amount * (1 - 0.001) - 1e-12:
                self.violation(
                    "book holds more than the exchange", f"{symbol}: {amount:g} > {total:g}"
                )
            excess = total - amount
            if excess <= 0 or symbol in buying:
                continue
            if not dust(market, excess, self.paper.price(symbol)):
                self.violation(
                    "coins the bot does not manage",
                    f"{symbol}: the exchange holds {total:g} of the bot's, the book {amount:g}",
                )
        ours = [o for o in open_exchange_orders(self.paper) if ours_by_id(o.client_order_id)]
        unknown = [o for o in ours if o.id not in book.orders]
        if unknown:
            self.violation(
                "open order unknown to the book", ", ".join(f"{o.symbol} {o.id}" for o in unknown)
            )
        if self.ledger_due:
            self.ledger_due = False
            self.ledger()

    def ledger(self) -> None:
        """Every fill of ours recorded once: the store's record of each order of ours filled as
        much as the exchange's, each round trip recorded once and none for more than was bought.
        Orders the book still follows, or whose outcome is still unknown, are the next sync's."""
        trader = self.trader
        assert trader is not None
        self.stats["ledgers checked"] += 1
        stored = {s.order.id: s.order for s in trader.store.orders(trader.label)}
        tracked = trader.book.orders  # still followed: the next sync applies what they filled
        by_client = {o.client_order_id: o for o in stored.values() if o.client_order_id}
        bought: Counter[str] = Counter()
        for order in self.paper.order_log:
            if not ours_by_id(order.client_order_id):
                continue
            if order.side is Side.BUY:
                bought[order.symbol] += order.filled
            if order.id in tracked or order.id in self.denied:
                continue
            record = stored.get(order.id)
            if record is None:
                placeholder = by_client.get(order.client_order_id)
                pending = placeholder is not None and placeholder.status is OrderStatus.OPEN
                if order.filled > 0 and not pending:
                    self.violation(
                        "a fill the book never applied",
                        f"{order.symbol} {order.side} {order.id} filled {order.filled:g}",
                    )
            elif abs(record.filled - order.filled) > FILL_TOLERANCE * max(1.0, order.filled):
                kind = "a fill applied twice" if record.filled > order.filled else "a fill lost"
                self.violation(
                    kind,
                    f"{order.symbol} {order.side} {order.id}: the store has {record.filled:g} "
                    f"filled, the exchange {order.filled:g}",
                )
        self._trades_once(bought)

    def _trades_once(self, bought: Counter[str]) -> None:
        trader = self.trader
        assert trader is not None
        recorded: Counter[str] = Counter()
        seen: set[tuple[str, float]] = set()
        for trade in trader.store.trades(trader.label):
            recorded[trade.symbol] += trade.amount
            if (trade.symbol, trade.opened_at) in seen:
                self.violation(
                    "a round trip recorded twice", f"{trade.symbol} opened at {trade.opened_at}"
                )
            seen.add((trade.symbol, trade.opened_at))
        for symbol, amount in recorded.items():
            if amount > bought[symbol] * (1 + 1e-6) + 1e-12:
                self.violation(
                    "trades for more than was bought",
                    f"{symbol}: {amount:g} in trades, {bought[symbol]:g} bought",
                )

    # -- what is not the bot's

    def cancel_sent(self, order_id: str) -> None:
        order = exchange_order(self.paper, order_id)
        if order is not None and not ours_by_id(order.client_order_id):
            self.violation("the bot cancelled an order not its own", f"{order.symbol} {order_id}")

    def dead_man_armed(self) -> None:
        """The bot armed the exchange's cancel-all-after: nothing but its orders may rest."""
        self.stats["dead man armed"] += 1
        others = [
            order_id
            for order_id in (self.outsider.orders if self.outsider else {})
            if (order := exchange_order(self.paper, order_id)) is not None and order.is_open
        ]
        if others:
            self.violation("dead man armed over orders not the bot's", ", ".join(others))

    def dead_man_disarming(self) -> None:
        self._disarms += 1

    def listed(self, orders: Iterable[Order]) -> None:
        """A sync of the bot listed these open orders: from now on it knows of the user's among
        them, and must not let its dead man's switch fire on them (if the exchange will not
        disarm it, or the bot could not see them before the deadline, it did what it could)."""
        for order in orders:
            if self.outsider is not None and order.id in self.outsider.orders:
                self._disarms_before.setdefault(order.id, self._disarms)

    def outsider_untouched(self) -> None:
        outsider = self.outsider
        if outsider is None:
            return
        for order_id, symbol in outsider.orders.items():
            order = exchange_order(self.paper, order_id)
            if order_id in self._touched or (order is not None and order.is_open):
                continue
            self._touched.add(order_id)
            seen = self._disarms_before.get(order_id)
            if seen is None or self._disarms > seen:
                self.stats["user's orders hit, excused"] += 1  # see the module docstring
                continue
            status = order.status if order is not None else "missing"
            self.violation("the user's order was touched", f"{symbol} {order_id} {status}")
        totals = self.paper.peek_balance().total
        for currency, amount in outsider.coins.items():
            if totals.get(currency, 0.0) < amount * (1 - 1e-9):
                self.violation(
                    "the user's coins were sold",
                    f"{currency}: {totals.get(currency, 0.0):g} left of {amount:g}",
                )


def exchange_order(paper: PaperExchange, order_id: str) -> Order | None:
    """One order as the exchange holds it now, without a request (the order log is a copy of
    every order ever placed, too slow to build every cycle)."""
    order = paper._book.get(order_id)
    return order.snapshot() if order is not None else None


def open_exchange_orders(paper: PaperExchange) -> list[Order]:
    """The orders resting at the exchange now, without a request."""
    return [order.snapshot() for order in paper._book.open_orders()]


def dust(market: Market, amount: float, price: float) -> bool:
    if is_dust(market, amount, price):
        return True
    return amount * price < market.min_cost * DUST_MARGIN


def ours_by_id(client_order_id: str | None) -> bool:
    return client_id_purpose(client_order_id) is not None
