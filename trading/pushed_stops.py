"""Stop-loss and take-profit on the prices an event feed pushes, between cycles.

Where the feed streams tickers, a position whose stop-loss is not resting at the exchange (the
venue places no stops, or refused this one) or whose take-profit the price reaches is exited
when a pushed price crosses the level, not at the next cycle: the same check and exit as the
cycle's (`Decisions.protect`), under the trader's lock, through `Failsafe.guarded` like any
step. One check per symbol at a time; the check reads the latest price again under the lock,
so a price that came back meanwhile sells nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from trading.failsafe import Failsafe
from trading.lifecycle import Lifecycle
from trading.models import OrderType, Position, Ticker
from trading.modes import Mode, checks_protection, flattens
from trading.parts import Parts

Protect = Callable[[list[str], dict[str, Ticker]], Awaitable[None]]


class PushedStops:
    """Watches one trader's pushed prices; `price` is the feed consumer's `on_price`."""

    def __init__(
        self,
        parts: Parts,
        protect: Protect,
        failsafe: Failsafe,
        lifecycle: Lifecycle,
        *,
        started: Callable[[], bool],
    ) -> None:
        self.parts = parts
        self._protect = protect
        self._failsafe = failsafe
        self._lifecycle = lifecycle
        self._started = started
        self._checks: dict[str, asyncio.Task] = {}
        self.exits = 0  # checks that found a level crossed under the lock and acted

    def price(self, ticker: Ticker) -> None:
        symbol = ticker.symbol
        if symbol in self._checks or not self._acting() or not self._crossed(ticker):
            return
        task = asyncio.create_task(self._check(symbol), name=f"pushed stop {symbol}")
        self._checks[symbol] = task
        task.add_done_callback(lambda _: self._checks.pop(symbol, None))
        task.add_done_callback(_retrieve)

    async def close(self) -> None:
        tasks = list(self._checks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _acting(self) -> bool:
        """The modes whose cycle checks stops and targets itself (not a stop's or a kill's
        flattening, which exit everything their own way)."""
        mode = self.parts.state.mode
        if not self._started() or self.parts.state.aborted or self._lifecycle.closing:
            return False
        return checks_protection(mode) and not flattens(mode) and mode is not Mode.STOPPING

    def _crossed(self, ticker: Ticker) -> bool:
        position = self.parts.book.positions.get(ticker.symbol)
        return position is not None and crossed(position, ticker.bid, self._resting(position))

    def _resting(self, position: Position) -> bool:
        """A stop-market rests at the exchange (a stop-limit may not fill: the cycle's check
        stays behind it, as here)."""
        guard = self.parts.guards.resting(position.symbol)
        return guard is not None and guard.confirmed and guard.order.type is OrderType.STOP_MARKET

    async def _check(self, symbol: str) -> None:
        async with self._lifecycle.run():
            await self._failsafe.guarded(lambda: self._act(symbol), exclusive=True)

    async def _act(self, symbol: str) -> None:
        ticker = self.parts.account.tickers.get(symbol)
        if ticker is None or not self._acting() or not self._crossed(ticker):
            return
        self.exits += 1
        await self._protect([symbol], {symbol: ticker})


def crossed(position: Position, price: float, stop_resting: bool) -> bool:
    """Whether `price` reaches the position's target, or its stop-loss where no stop rests at
    the exchange for it."""
    if price <= 0:
        return False
    stop = position.stop_loss
    if stop is not None and price <= stop and not stop_resting:
        return True
    return position.take_profit is not None and price >= position.take_profit


def _retrieve(task: asyncio.Task) -> None:
    """A check ends by itself: `Failsafe.guarded` has dealt with any Exception; what else ended
    it (the process dying) has nobody left to tell."""
    if not task.cancelled():
        task.exception()
