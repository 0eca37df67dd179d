"""The Trader: one exchange account's state machine, its cycle and its dead switch.

What each mode lets out and where each command leads is the mode table (trading/modes.py).
Besides the commands: a bug in a cycle leads to FAILSAFE (cancel all, exit all, retried until
flat); a Fatal fault to FAILSAFE (FAILSAFE_ON_FATAL=flatten) or HALTED (=stop: no entries,
positions left to their stops).

The cycle is sync -> scan -> decide -> execute. A recoverable fault skips the rest of the cycle
and changes nothing, but a sync (or a start's market load) that keeps failing becomes Fatal after
SYNC_FAILURE_LIMIT_SECONDS; an answer nobody recognises holds entries at once and becomes Fatal
when it persists as long. `last_sync_at` is when the trader last saw its account. Every
operation a command calls returns a result dataclass (trading/results.py) and never raises; the
scheduler only decides when a cycle runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from contextlib import suppress

from trading.book import Book, is_dust
from trading.clock import Clock
from trading.connector import Connector
from trading.errors import Recoverable
from trading.events import EntriesHeld, EquityReport, Notify, StateChanged
from trading.exits import Exits
from trading.failsafe import Failsafe
from trading.lifecycle import Lifecycle
from trading.models import Balance, Side, Ticker
from trading.modes import PAUSES, Mode, Purpose, checks_protection, flattens
from trading.operations import TraderOperations
from trading.orders import OrderRouter, Placement
from trading.reconcile import Difference, Reconciler, settle_seconds
from trading.risk import OrderIntent, RiskSnapshot, entry_amount
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
        self.lifecycle = Lifecycle(self.log)
        self._flattening: asyncio.Task[None] | None = None
        self._closed_log: list[ClosedTrade] = []  # the latest round trips, for kill reports
        self._closes = 0
        self._emergencies: set[str] = set()
        self._held_for: str | None = None  # the caution last announced
        self._foreign_orders = 0  # open orders at the exchange that are not the bot's

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Restore the book and mode from the store, load markets, reconcile. Never raises:
        if the exchange cannot be reached, the next cycle tries again."""
        if self.started:
            return
        self.restore()
        await self._guarded(self._start_exchange)
        if self.started and flattens(self.mode) and self.book.positions:
            self._keep_flattening(self.flatten_purpose())

    def restore(self) -> None:
        """The book, the mode and the bans as the store remembers them (once per process; no
        exchange I/O). Commands wait for the exchange start that follows (`ready`)."""
        if self._restored:
            return
        self._restored = True
        self.lifecycle.expect_start()
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
        self.restore()
        try:
            await self.connector.load_markets(critical=True)
            differences = await self._sync_now()
        finally:
            self.lifecycle.start_tried()
        self.started = True
        self.log.info(
            "started %s: %d positions, %d open orders",
            self.mode,
            len(self.book.positions),
            len(self.book.orders),
        )
        return differences

    async def ready(self) -> bool:
        """Wait (bounded, without the lock) until the first exchange start was tried, so a
        command queued at start acts on the reconciled book; False if it took too long."""
        return await self.lifecycle.wait_ready()

    async def drain(self, grace: float) -> None:
        """The process ends: no new cycle or sync; the running ones get `grace` seconds to
        finish, then are cancelled, which is not a fault: the mode stays what it was. An aborted
        trader touches nothing more, so its cycle is cancelled where it stands."""
        await self.lifecycle.drain(0.0 if self._aborted else grace)

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
        if self._aborted or self.lifecycle.closing:
            return
        started = self.clock.monotonic()
        try:
            async with self.lifecycle.run():
                await self._guarded(self._cycle, exclusive=True)
        finally:
            self.last_cycle_at = self.clock.time()
            self.last_cycle_seconds = self.clock.monotonic() - started
        self._announce_caution()

    async def run_sync(self) -> None:
        """The scheduled sync job. Never raises; skipped while a cycle or a command runs."""
        if self._aborted or self.lifecycle.closing or self._lock.locked():
            return
        async with self.lifecycle.run():
            await self._guarded(self._sync_only, exclusive=True)

    async def _sync_only(self) -> None:
        if not self.started:
            await self._start_exchange()
            return
        await self._sync_now()

    async def _cycle(self) -> None:
        if not self.started:
            try:
                await self._start_exchange()
            except Exception:  # not a shutdown's cancellation: that ends the run quietly
                if flattens(self.mode) and self.book.positions:
                    # Restored killed or in failsafe: the flattening gets out past a failing
                    # start (it sells without a sync); the next cycles keep trying the start.
                    self._keep_flattening(self.flatten_purpose())
                raise
        else:
            await self._sync_now()
        mode = self.mode
        if mode is Mode.RUNNING:
            await self._trade()
        elif mode is Mode.STOPPING:
            await self._stop_cycle()
        else:
            if mode in PAUSES and any(t.confirmed for t in self.book.orders.values()):
                await self.router.cancel_all()  # adopted by the sync: a pause holds no order
            fresh = await self._price_positions()
            if flattens(mode):
                if self.book.positions:
                    self._keep_flattening(self.flatten_purpose())
            elif checks_protection(mode):
                await self._protect(list(self.book.positions), fresh)
        await self.connector.guard_dead_man(
            working=any(t.confirmed for t in self.book.orders.values()),
            others=self._foreign_orders > 0,
        )
        self._report_equity()

    def flatten_purpose(self) -> Purpose:
        return Purpose.KILL if self.mode is Mode.KILLED else Purpose.FAILSAFE

    # --------------------------------------------------------------- trading

    async def _trade(self) -> None:
        positions = self.book.positions
        bans = self.store.bans(self.label)
        per_candidate = max(1, len(self.strategy.timeframes))
        budget = self.connector.budget()
        held = list(positions)
        # A banned position keeps its stop and target; only its exit signal goes unread.
        signalled = [s for s in held if s not in bans]
        reserve = min(budget // 2, len(signalled) * per_candidate)
        exclude = set(positions) | set(self.book.pending_entries()) | set(bans)
        exclude |= self.held_outside()
        scan = await self.scanner.scan(exclude=exclude, budget=budget - reserve, watch=positions)
        fresh = dict(scan.tickers)
        fresh.update(await self._fetch_tickers([s for s in held if s not in fresh]))
        self.tickers.update(fresh)
        await self._protect(held, fresh, signals=set(signalled), candle_budget=reserve)
        for candidate in scan.candidates:
            if len(self.book.positions) + len(self.book.pending_entries()) >= (
                self.settings.max_positions
            ):
                break
            await self._enter(candidate.symbol, candidate.ticker, candidate.signal)

    async def _protect(
        self,
        symbols: list[str],
        fresh: dict[str, Ticker],
        *,
        signals: Collection[str] = (),
        candle_budget: int = 0,
    ) -> None:
        """Stop-loss and take-profit from this cycle's ticker (never a stale one), then, for
        the `signals` symbols, the strategy's exit signal."""
        for symbol in symbols:
            position = self.book.positions.get(symbol)
            ticker = fresh.get(symbol)
            if position is None or ticker is None or self.book.open_orders(symbol=symbol):
                continue
            price = ticker.bid
            if position.stop_loss is not None and price <= position.stop_loss:
                await self._exit(symbol, price, "stop-loss", Purpose.PROTECT)
            elif position.take_profit is not None and price >= position.take_profit:
                await self._exit(symbol, price, "take-profit", Purpose.PROTECT)
            elif symbol in signals and candle_budget >= len(self.strategy.timeframes):
                candle_budget -= len(self.strategy.timeframes)
                reason = await self._exit_signal(symbol, price)
                if reason:
                    await self._exit(symbol, price, reason, Purpose.EXIT)

    async def _exit_signal(self, symbol: str, price: float) -> str | None:
        try:
            candles = await self.scanner.candles_for(symbol)
        except Recoverable as fault:
            self.log.info("no exit check for %s this cycle: %s", symbol, fault.kind)
            return None
        return self.strategy.exit(self.book.positions[symbol], candles, price)

    async def _exit(self, symbol: str, price: float, reason: str, purpose: Purpose) -> Placement:
        position = self.book.positions[symbol]
        intent = OrderIntent(symbol, Side.SELL, position.amount, price, purpose)
        placement = await self.router.place(intent, reason=reason)
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
        intent = OrderIntent(symbol, Side.BUY, amount, ticker.ask, Purpose.ENTRY)
        placement = await self.router.place(
            intent,
            reason=signal.reason,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
        )
        if placement.refused:
            self.log.debug("entry %s refused: %s", symbol, placement.refused)

    async def _stop_cycle(self) -> None:
        await self._price_positions()
        elapsed = self.clock.time() - self._stop_started()
        done = await self.exits.stop_step(
            self.tickers,
            elapsed=elapsed,
            market_after=self.settings.stop_exit_timeout_seconds,
        )
        if done:
            self.set_mode(Mode.STOPPED, "every position exited")

    # -------------------------------------------------------------- the sync

    async def _sync_now(self) -> list[Difference]:
        state = await self.connector.sync()
        self.balance = state.balance
        differences = await self.reconciler.reconcile(state)
        ours = {t.order.id for t in self.book.orders.values()}
        self._foreign_orders = sum(1 for o in state.open_orders if o.id not in ours)
        self.last_sync_at = self.clock.time()
        return differences

    async def _sync_any(self) -> None:
        """The sync of a flatten round, which may come before the markets ever loaded."""
        if not self.connector.markets:
            await self.connector.load_markets(critical=True)
        await self._sync_now()

    async def _price_positions(self) -> dict[str, Ticker]:
        """This cycle's tickers of every position (also kept as the latest known)."""
        fresh = await self._fetch_tickers(list(self.book.positions))
        self.tickers.update(fresh)
        return fresh

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
        free = dict(self.book.free)
        if self.last_sync_at is None:
            # No balance seen yet by this process: it holds what the store remembers (the
            # exchange refuses a sell of more), so a kill before the first sync still sells.
            for p in self.book.positions.values():
                market = self.connector.markets.get(p.symbol)
                if market is not None:
                    free.setdefault(market.base, p.amount)
        return RiskSnapshot(
            mode=self.mode,
            now=self.clock.time(),
            quote=self.settings.quote,
            free_quote=self.book.free.get(self.settings.quote, 0.0),
            equity=equity,
            exposure=exposure,
            positions=dict(self.book.positions),
            free_base=free,
            markets=self.connector.markets,
            bans=frozenset(self.store.bans(self.label)),
            pending_entries=self.book.pending_entries(),
            last_exit_at=dict(self.book.last_exit_at),
            held_outside=frozenset(self.held_outside()),
            exiting=self.book.exiting(),
            caution=self.caution(),
        )

    def caution(self) -> str | None:
        """Why entries are held now: an answer nobody recognised, until that call works again
        (it becomes Fatal if it persists)."""
        doubt = self.connector.unrecognized()
        if doubt is None:
            return None
        call, _since, message = doubt
        return f"{call} gave an unrecognised answer ({message[:120]})"

    def _announce_caution(self) -> None:
        """Tell the owner once when entries are held for an unrecognised answer, and once when
        they are no longer."""
        reason = self.caution()
        if (reason is None) == (self._held_for is None):
            return
        self._held_for = reason
        self.log.warning("entries %s", f"held: {reason}" if reason else "allowed again")
        now = self.clock.time()
        self.notify(EntriesHeld(account=self.label, at=now, reason=reason or "", held=bool(reason)))

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
