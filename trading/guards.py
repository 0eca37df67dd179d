"""Protective stops resting at the exchange: each position keeps one, so it stays protected
while the bot is dead (host down, a redeploy, the network cut).

A guard is a stop sell of the whole position at its stop-loss, sent through the router (gate,
client order id, record) like any order. Its life:

    placed     by the cycle that finds a position without one: right after the entry filled,
               or when one went missing at the exchange (cancelled outside, expired), or after
               a refusal once RETRY_AFTER_REFUSAL cycles have passed
    replaced   when the position grew (an entry filling in parts) or its stop moved (trailing,
               break-even): the old one is cancelled first and the new one placed after, so two
               never rest at once and at most one request passes without one
    lifted     by the router before any exit the bot sends itself (trading/orders.py), so the
               same coins are never sold twice
    put back   at once when that exit's outcome is unknown (`rearm`, trading/unsure.py): the
               exchange lets only one of the two hold the coins; a refusal for want of coins
               then means the exit holds or took them, and the stop waits for its settling.
               A stop of unknown outcome itself is sent again at the next look, on the same
               terms: if the one in doubt rests, the fresh one is refused for the coins
    restored   where an exit of the bot's own holds the coins that the mode no longer lets out
               (a /stop's limit sells after a /resume): that exit is cancelled and the stop put
               back in its place, position by position (one request without either)
    filled     by the exchange: the sync applies its fill like any sell and closes the position
               ("stop-loss (on exchange)")

Where the venue rests no stop (`stop_types` empty) or refused this one (a minimum notional
after a partial exit, an unsupported type), the cycle's own stop check guards the position;
/info says which ("on exchange" or "in bot").

Trailing stop and break-even move a position's stop-loss up from the cycle's fresh price
(`moved_stop`); its guard follows at the next `ensure`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from trading.book import Book, Tracked
from trading.connector import Connector
from trading.errors import InsufficientFunds, Recoverable, Rejected
from trading.models import Market, OrderType, Position, Side
from trading.modes import Mode, Purpose, allows, guards
from trading.orders import OrderRouter
from trading.risk import OrderIntent, round_down
from trading.settings import TradingSettings
from trading.unsure import unsure_sells

RETRY_AFTER_REFUSAL = 10  # cycles before a guard the exchange or the gate refused is tried again
GUARD_REASON = "stop-loss (on exchange)"


@dataclass(frozen=True)
class GuardView:
    """How one position is guarded, for /info."""

    stop: float | None
    where: str  # "exchange" | "bot" | "none"
    why: str = ""  # why not at the exchange


class Guards:
    """The resting stops of one trader's positions."""

    def __init__(
        self,
        router: OrderRouter,
        book: Book,
        connector: Connector,
        *,
        settings: TradingSettings,
        mode: Callable[[], Mode],
        log: logging.Logger,
    ) -> None:
        self.router = router
        self._mode = mode
        self.book = book
        self.connector = connector
        self.settings = settings
        self.log = log
        self._round = 0
        self._refused: dict[str, tuple[int, str]] = {}  # symbol -> (round, why)
        self.placed = 0  # guards placed, for the metrics
        self.replaced = 0  # guards re-placed because they went missing at the exchange
        self._rested: set[str] = set()  # symbols whose guard was resting at the last look
        # symbol -> the exits of unknown outcome that held or took its coins when its stop
        # went back: no stop again until those are settled
        self._held: dict[str, set[str]] = {}

    @property
    def stop_types(self) -> tuple[OrderType, ...]:
        return tuple(getattr(self.connector.venue, "stop_types", ()) or ())

    def resting(self, symbol: str) -> Tracked | None:
        """The guard resting for `symbol` (or one sent whose outcome is unknown), if any."""
        found = self.book.open_orders(symbol=symbol, purpose=Purpose.GUARD)
        found.sort(key=lambda t: not t.confirmed)
        return found[0] if found else None

    def on_exchange(self, symbol: str) -> bool:
        """A confirmed guard rests at the exchange for `symbol`."""
        guard = self.resting(symbol)
        return guard is not None and guard.confirmed and guard.order.is_open

    def view(self, position: Position) -> GuardView:
        if position.stop_loss is None:
            return GuardView(None, "none")
        if self.on_exchange(position.symbol):
            return GuardView(position.stop_loss, "exchange")
        refused = self._refused.get(position.symbol)
        why = refused[1] if refused else ("" if self.stop_types else "the exchange rests none")
        return GuardView(position.stop_loss, "bot", why)

    async def ensure(self, symbols: Iterable[str]) -> None:
        """Every position in `symbols` with a stop-loss gets a guard fitting it."""
        self._round += 1
        if not self.stop_types or not guards(self._mode()):
            return  # the owner's hands-off pause: no stop now, nothing refused to wait out after
        for symbol in list(symbols):
            await self._ensure(symbol)
        self._rested = {s for s in self.book.positions if self.on_exchange(s)}

    async def rearm(self, symbol: str) -> None:
        """Right after an exit of `symbol` came back with an unknown outcome: its stop back at
        once (the router calls this), so the position is guarded whichever way the exit went."""
        if self.stop_types:
            await self._ensure(symbol)

    async def _ensure(self, symbol: str) -> None:
        position = await self._to_guard(symbol)
        if position is None:
            return
        market = self.book.markets().get(symbol)
        if market is None:
            return
        trigger = _to_step(position.stop_loss, market.price_step)
        current = self._standing(symbol)
        if current is not None:
            if self._fits(current, position, trigger, market):
                return
            try:
                await self.router.cancel(current)  # first: never two stops for one position
            except Recoverable as fault:
                self.log.info("%s: stop not replaced this cycle (%s)", symbol, fault.kind)
                return
            if current.order.id in self.book.orders:
                # The exchange still shows it open (a cancel answered "not found" by mistake):
                # the new one waits, or two would rest at once.
                self.log.info("%s: old stop still open; replaced next cycle", symbol)
                return
            position = self.book.positions.get(symbol)
            if position is None:
                return  # the old stop had filled it
        refused = self._refused.get(symbol)
        if refused is not None and self._round - refused[0] < RETRY_AFTER_REFUSAL:
            return
        if current is None and symbol in self._rested and symbol not in self.router.lifted:
            # Gone without the bot (cancelled by hand, expired): the sync said so; put it back.
            self.replaced += 1
            self.log.warning("%s: the resting stop went missing; placing it again", symbol)
        await self._place(position, trigger, market, replacing=current is not None)

    async def _to_guard(self, symbol: str) -> Position | None:
        """The position of `symbol` if its stop may rest now: None while nothing is held, an
        exit is going out, or an exit of the bot's own holds the coins (one the mode no longer
        lets out is cancelled first)."""
        position = self.book.positions.get(symbol)
        if position is None or position.stop_loss is None or symbol in self.book.in_flight():
            return None
        exits = [
            t
            for t in self.book.open_orders(symbol=symbol)
            if t.side is Side.SELL and t.purpose != Purpose.GUARD and t.confirmed
        ]
        if exits:
            if not await self._clear(symbol, exits):
                return None  # an exit of the bot's own holds the coins (a stop's limit sell)
            position = self.book.positions[symbol]  # what the cancelled exits left
        if self._held.get(symbol, set()) & unsure_sells(self.book, symbol):
            return None  # a sell of unknown outcome holds or took the coins: settled first
        self._held.pop(symbol, None)
        return position

    def outdated(self) -> list[Tracked]:
        """Exits of the bot's own resting that the mode does not let out (a /stop's limit sells
        after a /resume): the next `ensure` puts each position's stop back in their place."""
        mode = self._mode()
        return [t for t in self.book.open_orders() if t.side is Side.SELL and _outdated(t, mode)]

    async def _clear(self, symbol: str, exits: list[Tracked]) -> bool:
        """Cancel `exits` if the mode lets none of them out any more; True once they are gone
        and the position is still held. A /stop's limit sell left resting after a /resume
        would sell at a price nobody asked for, and holds the coins its stop needs."""
        mode = self._mode()
        if not all(_outdated(t, mode) for t in exits):
            return False
        for tracked in exits:
            try:
                await self.router.cancel(tracked)
            except Recoverable as fault:
                self.log.info("%s: old exit not cancelled this cycle (%s)", symbol, fault.kind)
                return False
            if tracked.order.id in self.book.orders:
                return False  # the exchange still shows it open: tried again next cycle
            self.log.info("%s: %s exit cancelled; its stop goes back", symbol, tracked.purpose)
        return symbol in self.book.positions

    def _standing(self, symbol: str) -> Tracked | None:
        """The confirmed guard of `symbol`. One of unknown outcome counts as none: waiting for
        the reconciliation to settle it would leave the position bare as long as that takes
        (a sync interval on the event feed, a kill's rounds), and a fresh stop is refused for
        the coins if the one in doubt rests."""
        current = self.resting(symbol)
        return current if current is not None and current.confirmed else None

    def _fits(self, guard: Tracked, position: Position, trigger: float, market: Market) -> bool:
        order = guard.order
        free = self.book.free.get(market.base, 0.0)
        wanted = round_down(min(position.amount, free + order.remaining), market.amount_step)
        if order.remaining < wanted * (1 - 1e-9):
            return False  # the position grew
        if order.stop_price is None:
            return True  # not known (recorded before a restart): leave it be
        tolerance = (market.price_step or trigger * 1e-9) / 2
        return abs(order.stop_price - trigger) <= tolerance

    async def _place(
        self, position: Position, trigger: float, market: Market, *, replacing: bool
    ) -> None:
        symbol = position.symbol
        kind = self.stop_types[0]
        limit = None
        if kind is OrderType.STOP_LIMIT:
            limit = _to_step(trigger * (1 - self.settings.stop_limit_gap_pct / 100), None)
        intent = OrderIntent(symbol, Side.SELL, position.amount, trigger, Purpose.GUARD)
        placement = await self.router.place(
            intent, stop_price=trigger, limit_price=limit, reason=GUARD_REASON
        )
        self.router.lifted.discard(symbol)
        if placement.ok:
            self._refused.pop(symbol, None)
            self.placed += 1
            what = "moved" if replacing else "placed"
            self.log.info("%s: stop %s at %.8g on the exchange", symbol, what, trigger)
            return
        if placement.refused and not guards(self._mode()):
            return  # the owner's hands-off pause came meanwhile: nothing to wait out after it
        why = placement.refused or (placement.fault.message if placement.fault else "")
        held = unsure_sells(self.book, symbol)
        if isinstance(placement.fault, InsufficientFunds) and held:
            self._held[symbol] = held
            self.log.info("%s: a sell of unknown outcome holds its coins; stop after it", symbol)
            return
        if placement.refused or isinstance(placement.fault, Rejected):
            if symbol not in self._refused:
                self.log.warning("%s: no stop at the exchange (%s); the bot checks it", symbol, why)
            self._refused[symbol] = (self._round, why)

    def forget(self, symbol: str) -> None:
        self._refused.pop(symbol, None)
        self._held.pop(symbol, None)


def _outdated(tracked: Tracked, mode: Mode) -> bool:
    """An exit of the bot's own (of a purpose it knows) that `mode` would not send now."""
    purpose = tracked.purpose
    known = purpose in _PURPOSES and purpose != Purpose.GUARD
    return known and not allows(mode, Side.SELL, purpose)


_PURPOSES = frozenset(Purpose)


def moved_stop(position: Position, price: float, settings: TradingSettings) -> float | None:
    """The stop-loss a trailing stop or break-even moves a position to at `price`, or None to
    leave it. Only ever up; a trailing stop moves by at least a quarter of its distance, so
    the resting stop is not replaced on every tick."""
    stop = position.stop_loss
    if stop is None or price <= 0:
        return None
    best = stop
    trail = settings.trailing_stop_pct / 100
    if trail > 0:
        trailed = price * (1 - trail)
        if trailed > stop * (1 + trail / 4):
            best = max(best, trailed)
    even = settings.break_even_at_pct / 100
    if even > 0 and price >= position.entry_price * (1 + even):
        best = max(best, position.entry_price)
    return best if best > stop else None


def _to_step(price: float, step: float | None) -> float:
    if not step:
        return float(f"{price:.8g}")
    return round(round(price / step) * step, 12)
