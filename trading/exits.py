"""Getting out: the kill and failsafe flattening, and the gentle exit of a stop.

A flatten round market-exits every position at once: each position's own orders are cancelled
(its resting stop lifted) right before its sell, the pairs concurrent, paced at the venue's
request rate ahead of any other request of the account, and the orders of symbols not held are
cancelled beside them. One position is bare at a time: the router lifts the next position's stop
only once the previous one's sell has gone out (trading/lifting.py), so a host that dies
mid-kill leaves one position bare, for at most the one request between its stop's lift and its
sell. Whatever an exit left held (refused, or not sold) gets its stop back. Then it confirms
by a read of the account (`Account.confirm`: the balance, and the round's sells read together,
not one by one). It reads the account before
selling only when the book never has: a read first would cost a kill seconds on a slowly paced
exchange, and the read after the sells says what is left. Rounds repeat with capped backoff
until the book is flat: no position, and no order of unknown outcome that could still fill
(reconciliation settles those once the exchange can no longer take them).
A stop instead rests a limit sell at the touch (the best ask) for each position, re-prices it
each cycle, and goes to market after STOP_EXIT_TIMEOUT_SECONDS. The limit holds the coins its
resting stop needs, so where the exchange rests stops it goes out as an OCO (the limit and the
stop-loss on the same coins) and is never bare longer than the one request of a re-pricing;
where the exchange rests stops but takes no OCO, or the price is already at the stop-loss, the
position goes to market at once: a gentle exit must not leave it bare while the host is dead.
Where no stop rests at all, the plain limit changes nothing (the cycle's check is the guard).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from trading.book import Book, Tracked, is_dust
from trading.clock import Clock
from trading.errors import Fault, Recoverable
from trading.models import OrderType, Side, Ticker
from trading.modes import Purpose
from trading.orders import OrderRouter, Placement
from trading.reconcile import Difference
from trading.risk import OrderIntent

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class FlattenRound:
    """One attempt at being flat."""

    cancelled: int
    placements: tuple[Placement, ...]
    remaining: tuple[str, ...]  # symbols still held, or with an order of unknown outcome
    confirmed: bool  # the confirming sync succeeded
    problems: tuple[str, ...] = ()

    @property
    def flat(self) -> bool:
        return self.confirmed and not self.remaining


@dataclass(frozen=True)
class FlattenReport:
    """Rounds until flat, or until patience ran out."""

    rounds: tuple[FlattenRound, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def flat(self) -> bool:
        return bool(self.rounds) and self.rounds[-1].flat

    @property
    def remaining(self) -> tuple[str, ...]:
        return self.rounds[-1].remaining if self.rounds else ()

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(p for r in self.rounds for p in r.problems)


def _describe(exc: Exception) -> str:
    if isinstance(exc, Fault):
        return f"{exc.kind}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1))


class Exits:
    """The ways one trader leaves its positions."""

    def __init__(
        self,
        router: OrderRouter,
        book: Book,
        *,
        clock: Clock,
        sync: Callable[[], Awaitable[object]],
        resolve: Callable[..., Awaitable[Difference | None]],
        price: Callable[[str], float],
        guard: Callable[[Iterable[str]], Awaitable[None]],
        log: logging.Logger,
        known: Callable[[], bool] = lambda: False,
        confirm: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.router = router
        self.book = book
        self.clock = clock
        self._sync = sync
        self._confirm = confirm or sync  # the round's confirming read (Account.confirm)
        self._resolve = resolve  # Reconciler.resolve_unconfirmed
        self._price = price
        self._known = known  # the book has read the exchange at least once
        self._guard = guard  # Guards.ensure: a stop back on what an exit left held
        self.log = log

    # -- kill and failsafe

    async def flatten(
        self,
        purpose: Purpose,
        *,
        patience: float,
        on_retry: Callable[[FlattenRound], None] | None = None,
    ) -> FlattenReport:
        """Flatten rounds with capped backoff until flat or `patience` seconds have passed;
        `on_retry` hears of every round that left something behind."""
        started = self.clock.monotonic()
        rounds: list[FlattenRound] = []
        while True:
            result = await self.flatten_round(purpose)
            rounds.append(result)
            elapsed = self.clock.monotonic() - started
            if result.flat:
                break
            if on_retry is not None:
                on_retry(result)
            delay = backoff(len(rounds))
            if elapsed + delay > patience:
                break
            self.log.warning(
                "%s not flat after round %d (%s); retrying in %.0f s",
                purpose,
                len(rounds),
                ", ".join(result.remaining) or "unconfirmed",
                delay,
            )
            await self.clock.sleep(delay)
        return FlattenReport(tuple(rounds), self.clock.monotonic() - started)

    async def flatten_round(self, purpose: Purpose) -> FlattenRound:
        problems: list[str] = []
        cancelled = 0
        if not self._known():
            # Nothing to pair the cancels with yet: cancel everything but the positions' stops,
            # then read what is held.
            cancelled = await self._cancel_all(problems, guarding=self.book.positions)
            if not await self._try_sync(problems):
                await self._resolve_unsure(problems)
        elif any(not t.confirmed for t in self.book.orders.values()):
            await self._resolve_unsure(problems)
        symbols = list(self.book.positions)
        paired = {t.order.id for s in symbols for t in self.book.open_orders(symbol=s)}
        # Each position's own orders are cancelled by its exit, right before its sell: the
        # pairs go side by side, so the first sell waits for one cancel, not for every other
        # position's stop, and a stop is lifted only once the previous lifted position's sell
        # has gone out (one bare at a time). The orders of symbols not held go beside them.
        results = await asyncio.gather(
            self._cancel_all(problems, spare=symbols),
            *(self._exit(symbol, purpose, problems) for symbol in symbols),
            return_exceptions=True,
        )
        cancelled += len(paired - set(self.book.orders))
        placements: list[Placement] = []
        for symbol, result in zip(["", *symbols], results, strict=True):
            if isinstance(result, int):
                cancelled += result
            elif isinstance(result, Placement):
                placements.append(result)
                if not result.ok and result.reason:
                    problems.append(f"{symbol}: {result.reason}")
            elif isinstance(result, Exception):
                # A Fatal or a bug while getting out: say so, keep trying; the round is not flat.
                problems.append(f"{symbol}: {_describe(result)}")
                self._log_bug(f"exit of {symbol}", result)
            elif isinstance(result, BaseException):
                raise result
        await self._guard_left(problems)
        confirmed = await self._try_sync(problems, self._confirm)
        unsure = {t.order.symbol for t in self.book.orders.values() if not t.confirmed}
        return FlattenRound(
            cancelled=cancelled,
            placements=tuple(placements),
            remaining=tuple(sorted(set(self.book.positions) | unsure)),
            confirmed=confirmed,
            problems=tuple(problems),
        )

    async def _cancel_all(
        self, problems: list[str], *, spare: Collection[str] = (), guarding: Collection[str] = ()
    ) -> int:
        try:
            cancelled, failures = await self.router.cancel_all(spare=spare, guarding=guarding)
        except Exception as exc:  # a Fatal or a bug too: keep trying to get out
            problems.append(f"cancel: {_describe(exc)}")
            self._log_bug("cancel", exc)
            return 0
        problems += failures
        return cancelled

    async def _exit(self, symbol: str, purpose: Purpose, problems: list[str]) -> Placement | None:
        """Cancel the position's own orders (a stop's limit sell, a pending buy), then sell it;
        the router lifts its resting stop right before the sell, never after. None when nothing
        was left to sell (its stop had sold it)."""
        for tracked in self.book.open_orders(symbol=symbol):
            if not tracked.confirmed or tracked.purpose == Purpose.GUARD:
                continue
            try:
                await self.router.cancel(tracked)
            except Exception as exc:  # a Fatal or a bug too: the sell is tried all the same
                problems.append(f"{symbol}: {_describe(exc)}")
                self._log_bug("cancel", exc)
        position = self.book.positions.get(symbol)
        if position is None:
            return None
        price = self._price(symbol)
        intent = OrderIntent(symbol, Side.SELL, position.amount, price, purpose)
        # Its fill is read with the round's other sells by the confirming read, not one by one.
        placement = await self.router.place(intent, reason=purpose, settle_later=True)
        if not placement.ok and symbol not in self.book.positions:
            return None  # the stop's cancel found it filled: sold already, once
        if not placement.ok and placement.refused and self._is_dust(symbol, price):
            self.book.close(symbol, price, f"{purpose} (dust left)")
        return placement

    async def _guard_left(self, problems: list[str]) -> None:
        """What an exit left held (refused, rejected, not sold yet) gets its stop back until
        the next round, which lifts it again right before its exit."""
        try:
            await self._guard(list(self.book.positions))
        except Exception as exc:  # a Fatal or a bug too: keep trying to get out
            problems.append(f"stops: {_describe(exc)}")
            self._log_bug("stops", exc)

    async def _resolve_unsure(self, problems: list[str]) -> None:
        """Without a sync, an order sent with an unknown outcome would hold back the next exit of
        its symbol for as long as the account endpoint fails (retired: for ever). Settle each by
        its client order id instead, past an open circuit like the orders themselves."""
        unsure: list[Tracked] = [t for t in self.book.orders.values() if not t.confirmed]
        for tracked in unsure:
            try:
                found = await self._resolve(tracked, gated=False)
            except Exception as exc:  # a Fatal or a bug too: keep trying to get out
                problems.append(f"lookup of {tracked.order.symbol}: {_describe(exc)}")
                self._log_bug("lookup", exc)
                continue
            if found is not None and found.kind == "unresolved":
                problems.append(f"{found.symbol}: {found.detail}")

    async def _try_sync(
        self, problems: list[str], read: Callable[[], Awaitable[object]] | None = None
    ) -> bool:
        try:
            await (read or self._sync)()
        except Exception as exc:
            problems.append(f"sync: {_describe(exc)}")
            self._log_bug("sync", exc)
            return False
        return True

    def _log_bug(self, what: str, exc: Exception) -> None:
        if not isinstance(exc, Fault):
            self.log.error("%s raised while getting out", what, exc_info=exc)

    def _is_dust(self, symbol: str, price: float) -> bool:
        position = self.book.positions.get(symbol)
        if position is None:
            return False
        market = self.book.markets().get(symbol)
        free = self.book.free.get(market.base, 0.0) if market else position.amount
        return is_dust(market, min(position.amount, max(free, 0.0)), price) and is_dust(
            market, position.amount, price
        )

    # -- stop

    async def stop_step(
        self,
        tickers: Mapping[str, Ticker],
        *,
        elapsed: float,
        market_after: float,
    ) -> bool:
        """One cycle of a stop; True once every position is gone (banned ones too: a ban stops
        entries, never the owner's exit)."""
        to_market = elapsed >= market_after
        for symbol in list(self.book.positions):
            await self._stop_one(symbol, tickers.get(symbol), to_market)
        # A position whose exit was refused (or had no price) keeps a stop meanwhile; one
        # whose limit exit rests holds its coins there (trading/guards.py leaves it be).
        await self._guard(list(self.book.positions))
        resting = self.book.open_orders(purpose=Purpose.STOP)
        return not self.book.positions and not resting

    async def _stop_one(self, symbol: str, ticker: Ticker | None, to_market: bool) -> None:
        if ticker is None and not to_market:
            return  # no price this cycle: leave it where it is
        resting = self.book.open_orders(symbol=symbol, purpose=Purpose.STOP)
        target, trigger = self._gentle(symbol, None if to_market else ticker)
        if target is not None and any(_rests(t, target, trigger) for t in resting):
            return  # still at the touch (and still guarded)
        for tracked in resting:
            try:
                await self.router.cancel(tracked)
            except Recoverable as fault:
                self.log.info("stop: cancel on %s failed (%s)", symbol, fault.kind)
                return
        if symbol not in self.book.positions:
            return  # the cancelled order had filled it
        position = self.book.positions[symbol]
        price = ticker.bid if ticker else self._price(symbol)
        intent = OrderIntent(symbol, Side.SELL, position.amount, price, Purpose.STOP)
        placement = await self.router.place(
            intent,
            limit_price=target,
            stop_price=trigger,
            oco=trigger is not None,
            reason="stop" if target else "stop (market)",
        )
        if not placement.ok and placement.refused and self._is_dust(symbol, price):
            self.book.close(symbol, price, "stop (dust left)")

    def _gentle(self, symbol: str, ticker: Ticker | None) -> tuple[float | None, float | None]:
        """The limit at the touch a stop rests for `symbol`, and the trigger of the stop that
        rests on the same coins (an OCO); (None, None): out at market."""
        if ticker is None:
            return None, None
        kinds = getattr(self.router.connector.venue, "stop_types", ()) or ()
        if not kinds:
            return ticker.ask, None  # nothing rests here: the cycle's check guards it
        position = self.book.positions.get(symbol)
        stop = position.stop_loss if position is not None else None
        if stop is None:
            return ticker.ask, None  # no stop-loss to keep resting
        if OrderType.OCO not in kinds or ticker.last <= stop or ticker.ask <= stop:
            return None, None
        return ticker.ask, stop


def _rests(tracked: Tracked, limit: float, trigger: float | None) -> bool:
    """This stop exit is what `_gentle` wants now: at the limit, with its stop still on (an
    OCO's first fill cancels its stop)."""
    order = tracked.order
    if order.price != limit:
        return False
    if trigger is None:
        return order.type is not OrderType.OCO
    return order.type is OrderType.OCO and order.filled <= 0
