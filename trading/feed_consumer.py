"""One account's event feed applied to its trader: orders to the book, the balance and tickers
to the account, and how often the REST sync must still run.

An order the exchange pushed goes through the reconciler's `apply`, the code the REST sync
uses: a fill is a delta over what the store recorded, so a duplicate or an older look changes
nothing, and the book announces what it opens and closes as it does for the sync. Orders wait
for the trader's lock like any operation (never applied in the middle of a cycle's decision)
in a queue of their own, so tickers and balances keep flowing while a cycle runs. Before the
trader's first start nothing is applied: that start's sync reads it all.

REST stays the source of truth. While the feed is healthy the cycle skips its sync until
`sync_interval` has passed since the last one (the scheduled sync job keeps its cadence), the
scan reads the pushed tickers (re-seeded from one REST bulk read every `sync_interval`), and the
stop and target checks read the pushed prices. Whatever the sync then finds that the feed did
not say (a fill, an order gone, a position short) is corrected there and counted as `missed`.
Unhealthy or absent, everything is as without a feed: a sync every cycle, REST prices. A feed
problem is a state shown in /info and the metrics, never a fault.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trading.clock import Clock
from trading.lock import TraderLock
from trading.models import Balance, Feed, FeedItem, Order, Ticker
from trading.settings import TradingSettings

if TYPE_CHECKING:
    from trading.account import Account
    from trading.connector import Connector
    from trading.reconcile import Difference

# What a sync finds that a healthy feed should have said first.
MISSED_KINDS = frozenset(
    ("filled", "adopted", "gone", "position_closed", "position_reduced", "never_placed")
)

OFF = "off"  # EVENT_FEED=off
UNAVAILABLE = "unavailable"  # the venue has no event stream
UP = "up"
DOWN = "down"  # disconnected or silent: REST at full cadence


@dataclass(frozen=True)
class FeedStatus:
    """The feed of one trader at one moment, for /info, /debug and /metrics."""

    state: str  # off | unavailable | up | down
    events: int = 0  # items received
    applied: int = 0  # order changes that moved the book
    missed: int = 0  # differences the REST sync found that the feed did not say
    reconnects: int = 0  # sessions that failed and were opened again


NO_FEED = FeedStatus(OFF)


class FeedConsumer:
    """Applies one account's pushed events; `receive` is the feed's `Deliver`."""

    def __init__(
        self,
        account: Account,
        lock: TraderLock,
        *,
        started: Callable[[], bool],
        clock: Clock,
        log: logging.Logger,
        sync_interval: float,
    ) -> None:
        self.account = account
        self.sync_interval = sync_interval
        self.lock = lock
        self.clock = clock
        self.log = log
        self.feed: Feed | None = None
        self.state = OFF
        self.events = 0
        self.applied = 0
        self.missed = 0
        self._started = started
        # Pushed orders not applied yet. They stay here (not in a task's hands) until applied,
        # so a sync that takes the lock first applies them before it compares (`settle`).
        self._orders: list[Order] = []
        self._pending = asyncio.Event()
        self._applier: asyncio.Task | None = None
        self._pushed: dict[str, Ticker] = {}
        self._seeded_at: float | None = None  # when a REST bulk read seeded the pushed tickers
        self._was_healthy = False
        self.on_price: Callable[[Ticker], None] = lambda ticker: None  # pushed, between cycles
        self.skipped = False  # the cycle skipped its sync: who else has orders resting is unsure

    @classmethod
    def of(
        cls,
        account: Account,
        lock: TraderLock,
        settings: TradingSettings,
        started: Callable[[], bool],
    ) -> FeedConsumer:
        """A trader's consumer: feeding the account unless EVENT_FEED=off."""
        consumer = cls(
            account,
            lock,
            started=started,
            clock=account.clock,
            log=account.log,
            sync_interval=settings.sync_interval_seconds,
        )
        if settings.event_feed != OFF:
            account.feed = consumer
            consumer.attach(account.connector)
        return consumer

    # -- lifecycle

    def attach(self, connector: Connector) -> None:
        """Open the account's feed, where its venue has one."""
        feed = connector.open_feed(self.receive)
        if feed is None:
            self.state = UNAVAILABLE
            self.log.info("no event feed for this exchange: REST polling only")
            return
        self.feed, self.state = feed, DOWN

    def start(self) -> None:
        if self.feed is None or self._applier is not None:
            return
        self.feed.start()
        self._applier = asyncio.create_task(self._apply_orders(), name=f"feed {self.log.name}")

    async def close(self) -> None:
        applier, self._applier = self._applier, None
        if applier is not None:
            applier.cancel()
            await asyncio.gather(applier, return_exceptions=True)
        if self.feed is not None:
            await self.feed.close()

    # -- what the feed hands over

    async def receive(self, item: FeedItem) -> None:
        self.events += 1
        if isinstance(item, Ticker):
            self._pushed[item.symbol] = item
            self.account.tickers[item.symbol] = item
            self.on_price(item)
        elif not self._started():
            return  # the start's sync reads the account whole
        elif isinstance(item, Balance):
            self.account.balance = item
        else:
            self._orders.append(item)
            self._pending.set()

    async def _apply_orders(self) -> None:
        while True:
            await self._pending.wait()
            async with self.lock.exclusive():
                self.settle()

    def settle(self) -> None:
        """Apply every order pushed so far (the caller holds the trader's lock). The sync does
        this before it compares, so an event that arrived while a cycle held the lock is the
        feed's, not something it missed."""
        batch, self._orders = self._orders, []
        self._pending.clear()
        for pushed in batch:
            self._apply(pushed)

    def _apply(self, order: Order) -> None:
        try:
            found = self.account.reconciler.apply(order)
        except Exception:
            # The sync applies the same order by the same code; its failure is classified there.
            self.log.exception("the feed's %s could not be applied", order.symbol)
            return
        if found is not None:
            self.applied += 1
            self.log.info("feed: %s %s: %s", found.kind, found.symbol, found.detail)

    # -- health, cadence, prices

    @property
    def healthy(self) -> bool:
        return self._refresh()

    def _refresh(self) -> bool:
        """The feed's health now; its changes logged once and `state` kept."""
        healthy = self.feed is not None and self.feed.healthy
        if healthy != self._was_healthy and self.feed is not None:
            self._was_healthy = healthy
            self.state = UP if healthy else DOWN
            self._seeded_at = None  # what was pushed while it was down is lost: seed afresh
            self.log.info(
                "event feed %s: %s",
                self.state,
                "REST sync every SYNC_INTERVAL_SECONDS" if healthy else "REST polling every cycle",
            )
        return healthy

    def sync_due(self) -> bool:
        """Whether the cycle syncs: always without a healthy feed, else every sync interval."""
        last = self.account.last_sync_at
        stale = last is None or self.clock.time() - last >= self.sync_interval
        return stale or not self.healthy

    def synced(self, differences: Sequence[Difference]) -> None:
        """After a REST sync: what it corrected that a healthy feed did not say."""
        if not self.healthy:
            return
        missed = [d for d in differences if d.kind in MISSED_KINDS]
        for d in missed:
            self.log.warning("the sync found what the feed missed: %s %s: %s", *_parts(d))
        self.missed += len(missed)

    def prices(self, symbols: Collection[str]) -> dict[str, Ticker]:
        """The pushed tickers of these symbols, while the feed is healthy."""
        if not self.healthy:
            return {}
        return {s: self._pushed[s] for s in symbols if s in self._pushed}

    def all_prices(self) -> dict[str, Ticker] | None:
        """Every market's ticker for the scan, or None: REST must read them (no ticker stream,
        the feed unhealthy, or the pushed ones not seeded within the sync interval)."""
        seeded = self._seeded_at
        if self.feed is None or not self.feed.pushes_tickers or not self.healthy:
            return None
        if seeded is None or self.clock.time() - seeded >= self.sync_interval:
            return None
        return dict(self._pushed)

    def seed(self, tickers: dict[str, Ticker]) -> None:
        """A REST bulk read: every market's ticker, which the stream then keeps current."""
        if self.feed is None or not self.feed.pushes_tickers or not self.healthy:
            return
        for symbol, ticker in tickers.items():
            known = self._pushed.get(symbol)
            if known is None or known.timestamp <= ticker.timestamp:
                self._pushed[symbol] = ticker
        self._seeded_at = self.clock.time()

    def status(self) -> FeedStatus:
        self._refresh()
        # A feed without sessions (the paper exchange's, in process) never reconnects.
        reconnects = getattr(self.feed, "reconnects", 0)
        return FeedStatus(self.state, self.events, self.applied, self.missed, reconnects)


def _parts(d: Difference) -> tuple[str, str, str]:
    return d.kind, d.symbol, d.detail
