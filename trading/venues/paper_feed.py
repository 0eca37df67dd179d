"""The paper exchange's event stream: what its book does, pushed as it happens, the way an
exchange's websockets push it, so the demo, the tests and the backtest exercise the engine's
feed path (trading/feed_consumer.py) without a network.

Every order change (accepted, filled, triggered, cancelled) is handed over once the change is
done: the order's new state, then the whole balance. Where the market's exact price path is
known (offline, a SyntheticFeed) the exchange's own engine also runs every `tick` seconds of the
event loop's time (real time, whatever the demo's paper speed; simulated on a VirtualTimeLoop),
as a real exchange's does while nobody calls it, so a resting stop the path reaches fills
and is announced then, not at the bot's next request; each tick then pushes every market's
ticker. On live prices (DRY_RUN) it does neither: the prices stay the REST scan's, whose
requests go to the real exchange.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from trading.errors import Fault
from trading.models import Deliver, FeedItem

if TYPE_CHECKING:
    from trading.venues.paper import PaperExchange

log = logging.getLogger("trading.venues.paper")

TICK_SECONDS = 1.0


class PaperFeed:
    """One paper account's event stream. `start()` it; `close()` it at shutdown."""

    def __init__(
        self, exchange: PaperExchange, deliver: Deliver, *, tick: float = TICK_SECONDS
    ) -> None:
        self._exchange = exchange
        self._deliver = deliver
        self._tick = tick
        self.pushes_tickers = exchange.has_price_path
        self._changed: list[str] = []  # order ids changed since the last push, in order
        self._inbox: asyncio.Queue[FeedItem] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []

    @property
    def healthy(self) -> bool:
        """In process: up from start to close."""
        return bool(self._tasks)

    def start(self) -> None:
        if self._tasks:
            return
        self._exchange.listen(self._order_changed)
        self._tasks.append(asyncio.create_task(self._hand_over(), name="paper feed"))
        if self.pushes_tickers:
            self._tasks.append(asyncio.create_task(self._run_engine(), name="paper engine"))

    async def close(self) -> None:
        self._exchange.listen(None)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _order_changed(self, order_id: str) -> None:
        if not self._changed:  # pushed once the whole change is done
            asyncio.get_running_loop().call_soon(self._push_orders)
        if order_id not in self._changed:
            self._changed.append(order_id)

    def _push_orders(self) -> None:
        changed, self._changed = self._changed, []
        for order in self._exchange.orders_by_id(changed):
            self._inbox.put_nowait(order)
        self._inbox.put_nowait(self._exchange.peek_balance())

    async def _run_engine(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                await self._exchange.advance()
                tickers = await self._exchange.peek_tickers()
            except Fault as fault:  # the paper account could not be saved: try next tick
                log.debug("paper feed: %s", fault)
                continue
            for ticker in tickers.values():
                self._inbox.put_nowait(ticker)

    async def _hand_over(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                await self._deliver(item)
            except Exception:
                log.exception("the paper feed's receiver failed on %r", item)
