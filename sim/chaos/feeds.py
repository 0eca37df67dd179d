"""The chaos soak's event feed: the paper exchange's own stream (trading/venues/paper_feed.py)
as the bot's processes hear it, with the faults of a real exchange's websockets.

    PaperFeed -> ChaosFeeds    the seed's exchange pushing, for the whole seed (processes come
                               and go; its engine keeps running)
              -> ChaosFeed     what one process opened (the trader's `Feed`): only the newest
                               open one hears anything, and nothing once its process is dead

Faults, their rates drawn per seed: an event lost; delivered twice; held back and delivered
after the next (an order's older state after its newer one, a stale balance); a silence, where
nothing comes for minutes while the feed still looks healthy for its silence limit; a drop,
unhealthy at once. The REST sync must make all of it good: every order event of the bot's lost
with a fill in it is remembered, and after each fair sync (nothing moved while it ran) the
store must hold that fill (`check`, a violation otherwise).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from sim.chaos.books import ours_by_id
from sim.chaos.venue import Alive
from trading.clock import Clock
from trading.engine import Trader
from trading.models import Deliver, FeedItem, Order, Ticker
from trading.venues.paper import PaperExchange
from trading.venues.paper_feed import PaperFeed

LOSS_RATES = (0.0, 0.02, 0.1, 0.3)  # of order and balance events, by seed
DUPLICATE_RATES = (0.0, 0.05, 0.2)
REORDER_RATES = (0.0, 0.05, 0.2)
OUTAGE_RATE = 0.02  # per cycle: the feed falls silent or drops
OUTAGE_SECONDS = (60.0, 1200.0)
SILENCE_LIMIT = 60.0  # a silent feed still looks healthy this long (VenueFeed's default)
TICKS = (5.0, 15.0)  # seconds between the exchange engine's runs, by seed


class ChaosFeed:
    """One process's feed (models.Feed): the exchange's stream, once started, while its process
    lives and no newer one replaced it."""

    pushes_tickers = True

    def __init__(self, feeds: ChaosFeeds, deliver: Deliver, life: Alive | None) -> None:
        self._feeds = feeds
        self.deliver = deliver
        self._life = life
        self.open = False

    @property
    def listening(self) -> bool:
        return self.open and (self._life is None or self._life.alive)

    @property
    def healthy(self) -> bool:
        return self.listening and self._feeds.looks_healthy()

    def start(self) -> None:
        self._feeds.connect(self)

    async def close(self) -> None:
        self.open = False


@dataclass(frozen=True)
class _Lost:
    symbol: str
    client_order_id: str
    filled: float


class ChaosFeeds:
    """The seed's exchange stream and its faults; `open` is the chaos venue's `open_feed`."""

    def __init__(
        self,
        paper: PaperExchange,
        clock: Clock,
        rng: random.Random,
        quoted: Callable[[Sequence[Ticker]], None],
    ) -> None:
        self.clock = clock
        self.quoted = quoted  # the referee hears every price the bot could act on
        self.rng = rng
        self.loss = rng.choice(LOSS_RATES)
        self.duplicate = rng.choice(DUPLICATE_RATES)
        self.reorder = rng.choice(REORDER_RATES)
        self.stats: Counter[str] = Counter()
        self.lost: dict[str, _Lost] = {}  # order id -> the fill of ours a lost event carried
        self._stream = PaperFeed(paper, self._pushed, tick=rng.uniform(*TICKS))
        self._session: ChaosFeed | None = None
        self._held: FeedItem | None = None
        self._outage: tuple[str, float, float] | None = None  # (kind, since, until) monotonic

    def open(self, deliver: Deliver, life: Alive | None) -> ChaosFeed:
        return ChaosFeed(self, deliver, life)

    def connect(self, session: ChaosFeed) -> None:
        if self._session is not None:
            self._session.open = False
        session.open = True
        self._session = session
        self._stream.start()

    async def close(self) -> None:
        await self._stream.close()

    # -- faults

    def before_cycle(self) -> None:
        """Now and then the feed falls silent, or drops, for minutes."""
        if self._outage is not None or self.rng.random() >= OUTAGE_RATE:
            return
        kind = self.rng.choice(("silence", "drop"))
        now = self.clock.monotonic()
        self._outage = (kind, now, now + self.rng.uniform(*OUTAGE_SECONDS))
        self.stats[f"feed {kind}s"] += 1

    def _out(self) -> tuple[str, float] | None:
        """(kind, seconds so far) of the outage now, if one is on."""
        if self._outage is None:
            return None
        kind, since, until = self._outage
        now = self.clock.monotonic()
        if now >= until:
            self._outage = None
            return None
        return kind, now - since

    def looks_healthy(self) -> bool:
        out = self._out()
        return out is None or (out[0] == "silence" and out[1] <= SILENCE_LIMIT)

    async def _pushed(self, item: FeedItem) -> None:
        session = self._session
        if session is None or not session.listening:
            self._lose(item)
            return
        if self._out() is not None or (not isinstance(item, Ticker) and self._draw(self.loss)):
            self._lose(item)
            return
        if not isinstance(item, Ticker) and self._held is None and self._draw(self.reorder):
            self._held = item
            self.stats["feed events delivered out of order"] += 1
            return
        if isinstance(item, Ticker):
            self.quoted([item])
        await session.deliver(item)
        held, self._held = self._held, None
        if held is not None:
            await session.deliver(held)
        if not isinstance(item, Ticker) and self._draw(self.duplicate):
            self.stats["feed events delivered twice"] += 1
            await session.deliver(item)

    def _draw(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def _lose(self, item: FeedItem) -> None:
        if isinstance(item, Ticker):
            return
        self.stats["feed events lost"] += 1
        held, self._held = self._held, None
        if held is not None:
            self._lose(held)
        if isinstance(item, Order) and item.filled > 0 and ours_by_id(item.client_order_id):
            known = self.lost.get(item.id)
            if known is None or known.filled < item.filled:
                self.lost[item.id] = _Lost(item.symbol, item.client_order_id or "", item.filled)

    # -- the referee's check, after each fair sync

    def check(
        self, trader: Trader, denied: Collection[str], violation: Callable[[str, str], None]
    ) -> None:
        """Every fill of ours a lost event carried is in the store once a fair sync has run,
        unless its order's placement is still of unknown outcome (the sync's next look) or a
        lookup of it was refused with a lie (`denied`: the ledger's exception too)."""
        unsure = {t.client_id for t in trader.book.orders.values() if not t.confirmed}
        for order_id, lost in list(self.lost.items()):
            if lost.client_order_id in unsure:
                continue
            del self.lost[order_id]
            if order_id in denied:
                continue
            stored = trader.store.order(trader.label, order_id)
            if stored is not None and stored.order.filled >= lost.filled * (1 - 1e-9):
                self.stats["fills the feed lost, found by the sync"] += 1
                continue
            have = stored.order.filled if stored is not None else "nothing"
            violation(
                "a fill the feed missed was not found by the sync",
                f"{lost.symbol} order {order_id}: {lost.filled:g} filled, the store has {have}",
            )
