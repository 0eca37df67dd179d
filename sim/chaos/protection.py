"""The referee's measure of protection itself: how long the bot's positions went without a stop.

At every observation point (the end of each cycle, and each step the soak advances time while
the bot's host is dead) each of the bot's open positions at the exchange (what the exchange
holds of each base the book had a position in, less the user's own coins) is

    guarded     a stop sell of ours (client id purpose "guard", or a /stop's OCO whose stop is
                still on: unfilled) rests at the venue for its whole amount, within the lot step
    checked     no such stop, but a live trader in a mode that checks stops will look at it
                within one cycle (trading/modes.py `checks_protection`)
    hands-off   the owner's explicit choice (HANDS_OFF): counted apart, never a violation
    refused     no stop because the venue refused the last one (a minimum notional, a type it
                does not take, any plain refusal but for coins the bot's own orders hold) and
                no live trader checks it: counted apart, never a violation
    one request the host died inside the one request a position may go without its stop: after
                the request that left it bare (its entry filling, its stop lifted for an exit
                or a replacement), or the end of the owner's hands-off pause, no later request
                of the bot had been answered yet. No
                venue the bot trades on takes a stop attached to an entry or an exit, so
                this is the residual risk: counted apart, never a violation
    unprotected anything else, with its cause (CAUSES)

The state seen at one observation is taken to hold until the next one, and position-seconds are
integrated over simulated time. A gap no longer than one observation interval (a cycle) is what a
stop being replaced may leave (one request without it): it is counted as a replacement gap. A
longer gap that is not the owner's hands-off choice is a violation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sim.chaos.books import Outsider, dust, open_exchange_orders
from trading.book import client_id_purpose
from trading.clock import Clock
from trading.engine import Trader
from trading.models import Order, OrderType, Side
from trading.modes import Mode, Purpose, checks_protection, guards
from trading.venues.paper import PaperExchange

NO_STOP_DEAD = "no stop and trader dead"
NO_STOP_UNCHECKED = "no stop and mode does not check"
STOP_SMALLER = "stop smaller than the position"
REPLACING = "replacing"
REFUSED = "the venue refused the stop"
IN_ONE_REQUEST = "the host died inside one request"
CAUSES = (NO_STOP_DEAD, NO_STOP_UNCHECKED, STOP_SMALLER, REPLACING, REFUSED, IN_ONE_REQUEST)

GUARDED, CHECKED, HANDS_OFF = "guarded", "checked", "hands-off"
SAFE = (GUARDED, CHECKED, HANDS_OFF)
STOP_TYPES = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)


def _rests_stop(order: Order) -> bool:
    """A stop of ours rests in this open order: a guard, or an OCO's stop leg (until its
    first fill cancels it)."""
    purpose = client_id_purpose(order.client_order_id)
    if order.side is not Side.SELL or purpose is None:
        return False
    if order.type is OrderType.OCO:
        return order.filled <= 0
    return purpose == Purpose.GUARD and order.type in STOP_TYPES


@dataclass
class _Gap:
    cause: str
    mode: str = ""  # the trader's when the gap opened
    seconds: float = 0.0


class Protection:
    """Position-seconds of one seed's run, by how they were protected."""

    def __init__(
        self,
        paper: PaperExchange,
        clock: Clock,
        cycle_seconds: float,
        violation: Callable[[str, str], None],
    ) -> None:
        self.paper = paper
        self.clock = clock
        self.cycle_seconds = cycle_seconds
        self.violation = violation
        self.trader: Trader | None = None
        self.outsider: Outsider | None = None
        self.seconds: Counter[str] = Counter()  # position-seconds by state (and gap kind)
        self.longest = _Gap("")
        self._symbols: set[str] = set()  # every symbol the book had a position in
        self.refused: set[str] = set()  # symbols whose last stop the venue refused
        self._states: dict[str, str] = {}  # at the last observation
        self._gaps: dict[str, _Gap] = {}
        self._last: float | None = None
        self._mode = ""
        self._requests = 0  # the bot's order requests (creates and cancels), numbered
        self._bared: dict[str, int] = {}  # symbol -> the request that last left it bare
        self._followed: set[str] = set()  # ... and a later request for it has been answered
        self._until_answer: set[str] = set()  # bared by the command under way, until it answers

    def request(self, symbol: str, *, bares: bool) -> int:
        """The bot sends an order request for `symbol`; `bares`: one that leaves the position
        without its stop until the next (an entry, a stop's cancel). Its number, for
        `answered`."""
        self._requests += 1
        if bares:
            self._bared[symbol] = self._requests
            self._followed.discard(symbol)
        return self._requests

    def bared(self, symbols: Iterable[str]) -> None:
        """These positions lost their stops without a request of the bot's (the owner's
        hands-off pause ended). The bot puts them back one request each before the command that
        ended the pause answers: together they may go that many requests without, and not past
        that answer (`command_answered`), so a bot that answers without them is caught."""
        bared = list(symbols)
        for symbol in bared:
            self._bared[symbol] = self._requests + len(bared) - 1
            self._followed.discard(symbol)
        self._until_answer = set(bared)

    def command_answered(self) -> None:
        """The command under way answered: what it bared had its requests."""
        self._followed |= self._until_answer
        self._until_answer = set()

    def answered(self, number: int) -> None:
        """Request `number` was answered: for every position bared before it was sent, the
        one request has passed (strict while requests overlap: never lenient)."""
        self._followed |= {s for s, bared in self._bared.items() if number > bared}

    def observe(self, *, alive: bool) -> None:
        """One observation point: integrate what the last one saw up to now, then look again."""
        trader = self.trader
        assert trader is not None
        now = self.clock.monotonic()
        elapsed = 0.0 if self._last is None else now - self._last
        self._last = now
        for symbol, state in self._states.items():
            self.seconds["all"] += elapsed
            if state in SAFE:
                self.seconds[state] += elapsed
            else:
                self._gaps.setdefault(symbol, _Gap(state, self._mode)).seconds += elapsed
        self._symbols |= trader.book.positions.keys()  # a dead process's: what it knew last
        self._states, self._mode = self._look(trader, alive), str(trader.mode)
        for symbol in [s for s in self._gaps if self._states.get(s) in (None, *SAFE)]:
            self._close(symbol, self._gaps.pop(symbol))

    def finish(self) -> None:
        """The run's end: the last look's state up to now, every open gap closed."""
        if self.trader is not None:
            self.observe(alive=True)
        for symbol, gap in sorted(self._gaps.items()):
            self._close(symbol, gap)
        self._gaps.clear()

    def figures(self) -> dict[str, float]:
        """Position-seconds: "all", by state, "replacement gaps" and "unprotected" beyond them."""
        return dict(self.seconds)

    def _look(self, trader: Trader, alive: bool) -> dict[str, str]:
        totals = self.paper.peek_balance().total
        markets = trader.connector.markets or {}
        stops: Counter[str] = Counter()
        for order in open_exchange_orders(self.paper):
            if _rests_stop(order):
                stops[order.symbol] += order.remaining
        states: dict[str, str] = {}
        for symbol in sorted(self._symbols):
            market = markets.get(symbol)
            if market is None:
                continue
            user = self.outsider.coins.get(market.base, 0.0) if self.outsider else 0.0
            amount = totals.get(market.base, 0.0) - user
            if amount <= 0 or dust(market, amount, self.paper.price(symbol)):
                continue
            step = market.amount_step or amount * 1e-9
            if stops[symbol] >= amount - step:
                states[symbol] = GUARDED
            elif alive and checks_protection(trader.mode):
                states[symbol] = CHECKED
            elif trader.mode is Mode.HANDS_OFF:
                states[symbol] = HANDS_OFF
            else:
                states[symbol] = self._bare(symbol, stops[symbol], trader.mode, alive)
        return states

    def _bare(self, symbol: str, stop: float, mode: Mode, alive: bool) -> str:
        """Why a position no stop guards and no live bot checks is so."""
        if stop > 0:
            return STOP_SMALLER
        if symbol in self.refused:
            return REFUSED
        if not alive and symbol in self._bared and symbol not in self._followed:
            return IN_ONE_REQUEST
        if self._states.get(symbol) == GUARDED and guards(mode):
            return REPLACING  # it had one at the last look, and keeps one
        return NO_STOP_DEAD if not alive else NO_STOP_UNCHECKED

    def _close(self, symbol: str, gap: _Gap) -> None:
        if gap.seconds > self.longest.seconds:
            self.longest = gap
        if gap.cause == REFUSED:
            # Nothing the bot can rest there; its own check guarded it while it lived.
            self.seconds["venue refused"] += gap.seconds
            return
        if gap.cause == IN_ONE_REQUEST:
            self.seconds["died inside one request"] += gap.seconds
            return
        if gap.seconds <= self.cycle_seconds:
            self.seconds["replacement gaps"] += gap.seconds
            return
        self.seconds["unprotected"] += gap.seconds
        self.violation(
            "position unprotected longer than a cycle",
            f"{symbol}: {gap.seconds:.0f} s, {gap.cause} ({gap.mode})",
        )
