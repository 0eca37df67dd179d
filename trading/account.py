"""What a trader knows of its exchange account: the book it keeps, the balance and prices it
last saw, and the sync that keeps them true.

The sync reads the exchange (open orders first, then the balance) and reconciles the book with
it; `last_sync_at` is when the trader last saw its account, which is what /healthz calls fresh.
Prices are this cycle's tickers, also kept as the latest known: a position is valued and exited
at its bid, else its last price, else its entry price.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from trading.book import Book, is_dust
from trading.clock import Clock
from trading.connector import Connector
from trading.errors import Recoverable
from trading.events import EquityReport, Notify
from trading.models import AccountState, Balance, Order, Side, Ticker
from trading.modes import Mode, Purpose
from trading.orders import protects
from trading.reconcile import Difference, Reconciler, settle_seconds
from trading.risk import RiskSnapshot
from trading.settings import TradingSettings
from trading.store import ClosedTrade, Store

if TYPE_CHECKING:
    from trading.feed_consumer import FeedConsumer

KEEP_CLOSED = 200  # round trips remembered for kill reports


class Account:
    """One exchange account as the trader sees it."""

    def __init__(
        self,
        connector: Connector,
        *,
        store: Store,
        settings: TradingSettings,
        clock: Clock,
        notify: Notify,
        log: logging.Logger,
    ) -> None:
        self.connector = connector
        self.store = store
        self.notify = notify
        self.settings = settings
        self.clock = clock
        self.log = log
        self.balance = Balance()
        self.tickers: dict[str, Ticker] = {}
        self.last_sync_at: float | None = None
        self.foreign_orders = 0  # open orders at the exchange that are not the bot's
        self.foreign: tuple[Order, ...] = ()  # those orders, as the last sync saw them (/orders)
        self.closed: list[ClosedTrade] = []  # the latest round trips
        self.closes = 0  # round trips closed in this process
        self.feed: FeedConsumer | None = None  # the event feed, when the trader has one
        # Told every difference after each successful sync (the chaos referee checks there).
        self.on_synced: Callable[[list[Difference]], None] = lambda differences: None
        self.book = Book(
            connector.label,
            store=store,
            clock=clock,
            notify=notify,
            quote=settings.quote,
            markets=lambda: connector.markets,
            log=log,
            price_of=self.last_price,
            market_time=connector.market_time,
        )
        self.reconciler = Reconciler(
            connector,
            self.book,
            clock=clock,
            log=log,
            settle_seconds=settle_seconds(settings.recv_window_ms),
            notify=notify,
        )

    # -- the sync

    async def sync(self) -> list[Difference]:
        """Read the account and reconcile the book with it; every difference found."""
        # Orders the exchange had acknowledged before the list was asked for: one acknowledged
        # since (even if recorded before, as every placement is) the list may miss.
        known = frozenset(k for k, t in self.book.orders.items() if t.confirmed)
        return await self._reconciled(await self.connector.sync(), known)

    async def confirm(self) -> list[Difference]:
        """A flatten round's confirming read. When every order of ours still in the book can be
        read by id in one request (none is left, one, or the exchange reads many at once:
        Kraken), the open-order list is skipped: it could add only orders that are not the
        bot's, which a flatten never touches, and on a slowly paced exchange it is one private
        read more (3 s on Kraken) before a kill can say it is flat. The balance, then those
        orders by id. Otherwise, or while an order of unknown outcome waits to be found by
        its client id in the list, a whole sync."""
        if not self.connector.markets:
            await self.connector.load_markets(critical=True)
        orders = list(self.book.orders.values())
        if any(not t.confirmed for t in orders) or len(orders) > self.connector.orders_per_read():
            return await self.sync()
        return await self._reconciled(await self.connector.sync_balance())

    async def _reconciled(
        self, state: AccountState, known: frozenset[str] | None = None
    ) -> list[Difference]:
        if self.feed is not None:
            self.feed.settle()  # what was pushed before this answer is the feed's to apply
        self.balance = state.balance
        differences = await self.reconciler.reconcile(state, known)
        if state.listed:
            ours = {t.order.id for t in self.book.orders.values()}
            self.foreign = tuple(o for o in state.open_orders if o.id not in ours)
            self.foreign_orders = len(self.foreign)
        self.last_sync_at = self.clock.time()
        if self.feed is not None:
            self.feed.skipped = False
            self.feed.synced(differences)
        self.on_synced(differences)
        return differences

    async def sync_any(self) -> None:
        """The sync of a flatten round, which may come before the markets ever loaded."""
        if not self.connector.markets:
            await self.connector.load_markets(critical=True)
        await self.sync()

    def closed_trade(self, trade: ClosedTrade) -> None:
        self.closed.append(trade)
        self.closes += 1
        del self.closed[:-KEEP_CLOSED]

    def closed_since(self, mark: int) -> tuple[ClosedTrade, ...]:
        """The round trips closed after `closes` was `mark`."""
        return tuple(self.closed[-(self.closes - mark) :]) if self.closes > mark else ()

    # -- prices

    async def price_positions(self) -> dict[str, Ticker]:
        """This cycle's tickers of every position (also kept as the latest known)."""
        fresh = await self.fetch_tickers(list(self.book.positions))
        self.tickers.update(fresh)
        return fresh

    def sync_due(self) -> bool:
        """Whether a cycle syncs: every cycle, but every sync interval while a healthy event
        feed keeps the book current, unless the bot's working orders want the dead man's
        switch: it cancels every order of the account, so it is armed only on a fresh REST look
        at who else has orders resting (a feed may have lost the owner's new order)."""
        if self.feed is None:
            return True
        due = self.feed.sync_due() or self._dead_man_wanted()
        self.feed.skipped = not due
        return due

    def _dead_man_wanted(self) -> bool:
        working = (t for t in self.book.orders.values() if t.purpose != Purpose.GUARD)
        return bool(self.connector.venue.has_cancel_all_after) and any(working)

    async def fetch_tickers(self, symbols: list[str]) -> dict[str, Ticker]:
        """Tickers for some symbols (pushed by a healthy feed, else read), or none this cycle
        if the exchange cannot say."""
        pushed = self.feed.prices(symbols) if self.feed is not None else {}
        missing = [s for s in symbols if s not in pushed]
        if not missing or self.connector.budget() < 1:
            return pushed
        try:
            return {**pushed, **await self.connector.tickers(missing)}
        except Recoverable as fault:
            self.log.info("no prices for %d symbols this cycle: %s", len(missing), fault.kind)
            return pushed

    def last_price(self, symbol: str) -> float | None:
        """The last traded price seen for a symbol (fees paid in a third currency)."""
        ticker = self.tickers.get(symbol)
        return ticker.last if ticker is not None and ticker.last > 0 else None

    def price(self, symbol: str) -> float:
        """The price a position is valued and exited at: bid, else last, else entry."""
        ticker = self.tickers.get(symbol)
        if ticker is not None and ticker.bid > 0:
            return ticker.bid
        if ticker is not None and ticker.last > 0:
            return ticker.last
        position = self.book.positions.get(symbol)
        return position.entry_price if position else 0.0

    # -- views

    def equity(self) -> tuple[float, float]:
        """(equity, value in positions and pending entries), in quote."""
        quote = self.settings.quote
        held_quote = self.book.free.get(quote, 0.0) + max(
            0.0, self.balance.total_of(quote) - self.balance.free_of(quote)
        )
        value = sum(p.amount * self.price(p.symbol) for p in self.book.positions.values())
        pending = sum(
            t.order.remaining * (t.order.price or self.price(t.order.symbol))
            for t in self.book.orders.values()
            if t.side is Side.BUY
        )
        return held_quote + value, value + pending

    def held_outside(self) -> set[str]:
        """Symbols whose coins the account holds outside the bot's positions: never bought."""
        held: set[str] = set()
        for symbol, market in self.connector.markets.items():
            if symbol in self.book.positions or market.quote != self.settings.quote:
                continue
            amount = self.balance.total_of(market.base)
            if amount > 0 and not is_dust(market, amount, self.price(symbol) or 0.0):
                held.add(symbol)
        return held

    def snapshot(self, mode: Mode, *, bans: frozenset[str], caution: str | None) -> RiskSnapshot:
        """What the risk gate needs to know about this account now."""
        equity, exposure = self.equity()
        book = self.book
        free = dict(book.free)
        if self.last_sync_at is None:
            # No balance seen yet by this process: it holds what the store remembers (the
            # exchange refuses a sell of more), so a kill before the first sync still sells.
            for p in book.positions.values():
                market = self.connector.markets.get(p.symbol)
                if market is not None:
                    free.setdefault(market.base, p.amount)
        return RiskSnapshot(
            mode=mode,
            now=self.clock.time(),
            quote=self.settings.quote,
            free_quote=book.free.get(self.settings.quote, 0.0),
            equity=equity,
            exposure=exposure,
            positions=dict(book.positions),
            free_base=free,
            markets=self.connector.markets,
            bans=bans,
            pending_entries=book.pending_entries(),
            last_exit_at=dict(book.last_exit_at),
            market_now=self.connector.market_time(),
            held_outside=frozenset(self.held_outside()),
            exiting=book.exiting(),
            sending=book.in_flight(),
            caution=caution,
        )

    async def guard_dead_man(self) -> None:
        """Cancel-all-after guards only the bot's working orders: never while a protective
        stop or an order that is not the bot's rests (it would cancel those too)."""
        orders = list(self.book.orders.values())
        stops = any(protects(t) for t in orders)
        unsure = self.feed is not None and self.feed.skipped
        await self.connector.guard_dead_man(
            working=any(t.confirmed and not protects(t) for t in orders),
            others=self.foreign_orders > 0 or stops or unsure,
        )

    def report_equity(self) -> None:
        """Every cycle: the equity curve's point (kept one a minute) and the notifier's figure."""
        equity, exposure = self.equity()
        share = exposure / equity if equity > 0 else 0.0
        now = self.clock.time()
        self.store.add_equity(self.connector.label, now, equity, share)
        self.notify(
            EquityReport(
                account=self.connector.label,
                at=now,
                equity=equity,
                exposure=share,
                quote=self.settings.quote,
                positions=len(self.book.positions),
            )
        )

    def leftovers(self) -> list[str]:
        """Coins the account still holds that no position of the bot accounts for, and why
        they stay: the user's own (never the bot's to sell) or dust below the market minimum.
        A reply never says "flat" without naming them."""
        notes = []
        for symbol, market in sorted(self.connector.markets.items()):
            if symbol in self.book.positions or market.quote != self.settings.quote:
                continue
            amount = self.balance.total_of(market.base)
            if amount <= 0:
                continue
            if is_dust(market, amount, self.price(symbol) or 0.0):
                notes.append(f"{market.base} {amount:g}: dust below the market minimum")
            else:
                notes.append(f"{market.base} {amount:g}: not bought by the bot, left alone")
        return notes
