"""The Trader: one exchange account's state machine, its cycle and its dead switch.

    RUNNING --pause--> PAUSED --unpause--> RUNNING
    RUNNING/PAUSED/HALTED --stop--> STOPPING --(flat)--> STOPPED
    any --kill--> KILLED (flattened at market, retried until flat)
    a bug in a cycle --> FAILSAFE (cancel all, exit all, retried until flat)
    a Fatal fault --> FAILSAFE (FAILSAFE_ON_FATAL=flatten) or HALTED (=stop: no orders at all)
    STOPPED/KILLED/FAILSAFE (flat) and HALTED --resume--> RUNNING

The cycle is sync -> scan -> decide -> execute. A Recoverable fault (Unrecognized too) skips
the rest of the cycle and changes nothing, but a sync (or a start's market load) that keeps
failing becomes Fatal after SYNC_FAILURE_LIMIT_SECONDS: a trader that cannot see its account
checks no stop-loss. `last_sync_at` is when it last saw it. Every operation a command calls
returns a result dataclass (trading/results.py) and never raises; the scheduler only decides
when a cycle runs.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from trading.book import ENTRY, EXIT, FAILSAFE, KILL, Book, is_dust
from trading.clock import Clock
from trading.connector import Connector
from trading.errors import Recoverable
from trading.events import EquityReport, Notify, StateChanged
from trading.exits import Exits
from trading.failsafe import FLAT_MODES, Failsafe
from trading.models import Balance, Side, Ticker
from trading.operations import TraderOperations
from trading.orders import OrderRouter, Placement
from trading.reconcile import Difference, Reconciler, settle_seconds
from trading.risk import Mode, OrderIntent, RiskSnapshot, Source, entry_amount
from trading.scanner import Scanner
from trading.settings import TradingSettings
from trading.store import ClosedTrade, Store
from trading.strategies.base import Strategy

__all__ = ["Mode", "Trader"]


class Trader(Failsafe, TraderOperations):
    """One exchange account: its cycle, its sync, and the operations commands call."""

    def __init__(
        self,
        connector: Connector,
        *,
        store: Store,
        strategy: Strategy,
        settings: TradingSettings,
        clock: Clock,
        notify: Notify,
        scanner: Scanner | None = None,
        kill_patience: float = 20.0,
        lock_wait: float = 5.0,
        order_rate: float | None = None,
    ) -> None:
        self.connector = connector
        self.label: str = connector.label
        self.store = store
        self.strategy = strategy
        self.settings = settings
        self.clock = clock
        self.notify = notify
        self.log = logging.getLogger(f"trading.{self.label.replace(':', '.')}")
        self.scanner = scanner or Scanner(
            connector,
            strategy,
            quote=settings.quote,
            min_quote_volume=settings.min_quote_volume,
            log=self.log,
        )
        self.kill_patience = kill_patience  # seconds a kill retries before answering
        self.lock_wait = lock_wait  # seconds a kill waits for a running cycle
        self.mode = Mode.RUNNING
        self.started = False
        self.last_cycle_at: float | None = None
        self.last_sync_at: float | None = None
        self.last_cycle_seconds: float | None = None
        self.last_error: str | None = None
        self.balance = Balance()
        self.tickers: dict[str, Ticker] = {}
        self.book = Book(
            self.label,
            store=store,
            clock=clock,
            notify=notify,
            quote=settings.quote,
            markets=lambda: self.connector.markets,
            log=self.log,
            price_of=self._last_price,
        )
        self.book.on_close = self._after_close
        self.router = OrderRouter(
            connector,
            self.book,
            clock=clock,
            notify=notify,
            settings=settings,
            snapshot=self.snapshot,
            log=self.log,
            # Requests per second the venue allows, when it says (the paper exchange's bucket);
            # ccxt paces live requests itself.
            order_rate=order_rate or _venue_rate(connector),
        )
        self.reconciler = Reconciler(
            connector,
            self.book,
            clock=clock,
            log=self.log,
            settle_seconds=settle_seconds(settings.recv_window_ms),
        )
        self.exits = Exits(
            self.router,
            self.book,
            clock=clock,
            sync=self._sync_any,
            resolve=self.reconciler.resolve_unconfirmed,
            price=self.price,
            log=self.log,
        )
        self._lock = asyncio.Lock()
        self._lock_owner: asyncio.Task | None = None
        self._aborted = False
        self._restored = False
        self._flattening: asyncio.Task[None] | None = None
        self._closed_log: list[ClosedTrade] = []  # the latest round trips, for kill reports
        self._closes = 0
        self._emergencies: set[str] = set()

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Restore the book and mode from the store, load markets, reconcile. Never raises:
        if the exchange cannot be reached, the next cycle tries again."""
        if self.started:
            return
        self._restore()
        await self._guarded(self._start_exchange)
        if self.started and self.mode in FLAT_MODES and self.book.positions:
            self._keep_flattening(FAILSAFE if self.mode is Mode.FAILSAFE else KILL)

    def _restore(self) -> None:
        """The book and the mode as the store remembers them (once per process)."""
        if self._restored:
            return
        self._restored = True
        now = self.clock.time()
        window = max(
            self.settings.reentry_cooldown_seconds, self.settings.loop_guard_window_seconds
        )
        self.book.load(since=now - window)
        saved = self.store.mode(self.label)
        if not saved or saved == self.mode:
            return
        try:
            self.mode = Mode(saved)
        except ValueError:
            self.log.warning("unknown saved mode %r; starting as running", saved)
            return
        self.notify(
            StateChanged(
                account=self.label,
                at=now,
                old="",
                new=str(self.mode),
                reason="restored after a restart",
            )
        )

    async def _start_exchange(self) -> list[Difference]:
        self._restore()
        await self.connector.load_markets(critical=True)
        differences = await self._sync_now()
        self.started = True
        self.log.info(
            "started %s: %d positions, %d open orders",
            self.mode,
            len(self.book.positions),
            len(self.book.orders),
        )
        return differences

    async def close(self) -> None:
        """Stop background work (the flattening retry loop); the connector is the caller's."""
        task, self._flattening = self._flattening, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    def _last_price(self, symbol: str) -> float | None:
        """The last traded price seen for a symbol (fees paid in a third currency)."""
        ticker = self.tickers.get(symbol)
        return ticker.last if ticker is not None and ticker.last > 0 else None

    @property
    def aborted(self) -> bool:
        """/abort was obeyed: the process is ending and this trader does nothing more."""
        return self._aborted

    # ------------------------------------------------------------ the cycle

    async def run_cycle(self) -> None:
        """One scheduled cycle: sync -> scan -> decide -> execute. Never raises."""
        if self._aborted:
            return
        started = self.clock.monotonic()
        try:
            await self._guarded(self._cycle, exclusive=True)
        finally:
            self.last_cycle_at = self.clock.time()
            self.last_cycle_seconds = self.clock.monotonic() - started

    async def run_sync(self) -> None:
        """The scheduled sync job. Never raises; skipped while a cycle or a command runs."""
        if self._aborted or self._lock.locked():
            return
        await self._guarded(self._sync_only, exclusive=True)

    async def _sync_only(self) -> None:
        if not self.started:
            await self._start_exchange()
            return
        await self._sync_now()

    async def _cycle(self) -> None:
        if not self.started:
            await self._start_exchange()
        else:
            await self._sync_now()
        if self.mode is Mode.RUNNING:
            await self._trade()
        elif self.mode is Mode.STOPPING:
            await self._stop_cycle()
        else:
            if self.mode is Mode.PAUSED and any(t.confirmed for t in self.book.orders.values()):
                await self.router.cancel_all()  # adopted by the sync: a pause holds no order
            await self._price_positions()
            if self.mode in FLAT_MODES and self.book.positions:
                self._keep_flattening(KILL if self.mode is Mode.KILLED else FAILSAFE)
        if any(t.confirmed for t in self.book.orders.values()):
            await self.connector.refresh_dead_man()
        self._report_equity()

    # --------------------------------------------------------------- trading

    async def _trade(self) -> None:
        positions = self.book.positions
        bans = self.store.bans(self.label)
        per_candidate = max(1, len(self.strategy.timeframes))
        budget = self.connector.budget()
        held = [s for s in positions if s not in bans]
        reserve = min(budget // 2, len(held) * per_candidate)
        exclude = set(positions) | set(self.book.pending_entries()) | set(bans)
        exclude |= self.held_outside()
        scan = await self.scanner.scan(exclude=exclude, budget=budget - reserve, watch=positions)
        fresh = dict(scan.tickers)
        fresh.update(await self._fetch_tickers([s for s in held if s not in fresh]))
        self.tickers.update(fresh)
        await self._protect(held, reserve, fresh)
        for candidate in scan.candidates:
            if len(self.book.positions) + len(self.book.pending_entries()) >= (
                self.settings.max_positions
            ):
                break
            await self._enter(candidate.symbol, candidate.ticker, candidate.signal)

    async def _protect(
        self, symbols: list[str], candle_budget: int, fresh: dict[str, Ticker]
    ) -> None:
        """Stop-loss and take-profit from this cycle's ticker (never a stale one), then the
        strategy's exit signal."""
        for symbol in symbols:
            position = self.book.positions.get(symbol)
            ticker = fresh.get(symbol)
            if position is None or ticker is None or self.book.open_orders(symbol=symbol):
                continue
            price = ticker.bid
            reason = None
            if position.stop_loss is not None and price <= position.stop_loss:
                reason = "stop-loss"
            elif position.take_profit is not None and price >= position.take_profit:
                reason = "take-profit"
            elif candle_budget >= len(self.strategy.timeframes):
                candle_budget -= len(self.strategy.timeframes)
                reason = await self._exit_signal(symbol, price)
            if reason:
                await self._exit(symbol, price, reason, Source.STRATEGY, EXIT)

    async def _exit_signal(self, symbol: str, price: float) -> str | None:
        try:
            candles = await self.scanner.candles_for(symbol)
        except Recoverable as fault:
            self.log.info("no exit check for %s this cycle: %s", symbol, fault.kind)
            return None
        return self.strategy.exit(self.book.positions[symbol], candles, price)

    async def _exit(
        self, symbol: str, price: float, reason: str, source: Source, purpose: str
    ) -> Placement:
        position = self.book.positions[symbol]
        intent = OrderIntent(symbol, Side.SELL, position.amount, price, source)
        placement = await self.router.place(intent, purpose, reason=reason)
        if not placement.ok and placement.refused and symbol in self.book.positions:
            market = self.connector.markets.get(symbol)
            if is_dust(market, self.book.positions[symbol].amount, price):
                self.book.close(symbol, price, f"{reason} (dust left)")
            else:
                self.log.info("exit %s refused: %s", symbol, placement.refused)
        return placement

    async def _enter(self, symbol: str, ticker: Ticker, signal) -> None:
        market = self.connector.markets.get(symbol)
        if market is None:
            return
        amount = entry_amount(self.settings.stake_amount, ticker.ask, market)
        intent = OrderIntent(symbol, Side.BUY, amount, ticker.ask, Source.STRATEGY)
        placement = await self.router.place(
            intent,
            ENTRY,
            reason=signal.reason,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
        )
        if placement.refused:
            self.log.debug("entry %s refused: %s", symbol, placement.refused)

    async def _stop_cycle(self) -> None:
        await self._price_positions()
        elapsed = self.clock.time() - self._stop_started()
        bans = self.store.bans(self.label)
        done = await self.exits.stop_step(
            self.tickers,
            elapsed=elapsed,
            market_after=self.settings.stop_exit_timeout_seconds,
            skip=set(bans),
        )
        if done:
            self.set_mode(Mode.STOPPED, "every position exited")

    # -------------------------------------------------------------- the sync

    async def _sync_now(self) -> list[Difference]:
        state = await self.connector.sync()
        self.balance = state.balance
        differences = await self.reconciler.reconcile(state)
        self.last_sync_at = self.clock.time()
        return differences

    async def _sync_any(self) -> None:
        """The sync of a flatten round, which may come before the markets ever loaded."""
        if not self.connector.markets:
            await self.connector.load_markets(critical=True)
        await self._sync_now()

    async def _price_positions(self) -> None:
        self.tickers.update(await self._fetch_tickers(list(self.book.positions)))

    async def _fetch_tickers(self, symbols: list[str]) -> dict[str, Ticker]:
        """Tickers for some symbols, or none this cycle if the exchange cannot say."""
        if not symbols or self.connector.budget() < 1:
            return {}
        try:
            return await self.connector.tickers(symbols)
        except Recoverable as fault:
            self.log.info("no prices for %d symbols this cycle: %s", len(symbols), fault.kind)
            return {}

    # ------------------------------------------------------ state and views

    def _stop_started(self) -> float:
        raw = self.store.get_meta(f"stop_started:{self.label}")
        return float(raw) if raw else self.clock.time()

    def price(self, symbol: str) -> float:
        """The price a position is valued and exited at: bid, else last, else entry."""
        ticker = self.tickers.get(symbol)
        if ticker is not None and ticker.bid > 0:
            return ticker.bid
        if ticker is not None and ticker.last > 0:
            return ticker.last
        position = self.book.positions.get(symbol)
        return position.entry_price if position else 0.0

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

    def snapshot(self) -> RiskSnapshot:
        equity, exposure = self.equity()
        return RiskSnapshot(
            mode=self.mode,
            now=self.clock.time(),
            quote=self.settings.quote,
            free_quote=self.book.free.get(self.settings.quote, 0.0),
            equity=equity,
            exposure=exposure,
            positions=dict(self.book.positions),
            free_base=dict(self.book.free),
            markets=self.connector.markets,
            bans=frozenset(self.store.bans(self.label)),
            pending_entries=self.book.pending_entries(),
            last_exit_at=dict(self.book.last_exit_at),
            held_outside=frozenset(self.held_outside()),
            exiting=self.book.exiting(),
        )

    def _report_equity(self) -> None:
        equity, exposure = self.equity()
        share = exposure / equity if equity > 0 else 0.0
        now = self.clock.time()
        self.store.add_equity(self.label, now, equity, share)
        self.notify(
            EquityReport(
                account=self.label,
                at=now,
                equity=equity,
                exposure=share,
                quote=self.settings.quote,
                positions=len(self.book.positions),
            )
        )

    def _after_close(self, trade: ClosedTrade) -> None:
        """Every closed round trip: remember it for kill reports, run the loop guard."""
        self._closed_log.append(trade)
        self._closes += 1
        del self._closed_log[:-200]
        self.loop_guard(trade.symbol)


def _venue_rate(connector: Connector) -> float | None:
    rate = getattr(connector.venue, "rate_limit", None)
    return float(rate) if isinstance(rate, int | float) and rate > 0 else None
