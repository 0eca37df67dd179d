"""The Trader: one exchange account's lifecycle, composed of parts it owns (its cycle is
trading/cycle.py).

What each mode lets out and where each command leads is the mode table (trading/modes.py); the
parts are listed in trading/parts.py. Besides the commands: a bug in a cycle leads to FAILSAFE
(cancel all, exit all, retried until flat); a Fatal fault to FAILSAFE (FAILSAFE_ON_FATAL=
flatten) or HALTED (=stop: no entries, positions left to their stops).

The cycle is sync -> scan -> decide -> execute. A recoverable fault skips the rest of the cycle
and changes nothing, but a sync (or a start's market load) that keeps failing becomes Fatal after
SYNC_FAILURE_LIMIT_SECONDS; an answer nobody recognises holds entries at once and becomes Fatal
when it persists as long. While the sync fails, stop-losses and take-profits still act on the
last known book. Every operation a command calls returns a result dataclass
(trading/results.py) and never raises; the scheduler only decides when a cycle runs.
"""

from __future__ import annotations

import logging

from trading.account import Account
from trading.clock import Clock
from trading.connector import Connector
from trading.cycle import Cycle
from trading.decisions import Decisions
from trading.entry_hold import EntryHold
from trading.events import Notify
from trading.exits import Exits
from trading.failsafe import Failsafe
from trading.feed_consumer import FeedConsumer
from trading.guards import Guards
from trading.instrument import Instrument
from trading.lifecycle import Lifecycle
from trading.lock import TraderLock
from trading.manual import ManualCommands
from trading.modes import Mode, flattens
from trading.operations import ModeCommands
from trading.order_commands import OrderCommands
from trading.order_pacer import OrderPacer
from trading.orders import OrderRouter
from trading.paper_reset import reset_paper
from trading.parts import Parts
from trading.pushed_stops import PushedStops
from trading.reconcile import Difference
from trading.risk import RiskSnapshot
from trading.scanner import ReadTap, Scanner
from trading.settings import TradingSettings
from trading.state import TraderState
from trading.status import Timing, TraderStatus, info, status
from trading.store import ClosedTrade, Store
from trading.strategies.base import Strategy

__all__ = ["Mode", "Trader"]


class Trader:
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
        tap: ReadTap | None = None,
    ) -> None:
        label = connector.label
        log = logging.getLogger(f"trading.{label.replace(':', '.')}")
        self.label = label
        self.connector = connector
        self.store = store
        self.strategy = strategy
        self.settings = settings
        self.clock = clock
        self.notify = notify
        self.log = log
        self.state = TraderState(label, store=store, clock=clock, notify=notify, log=log)
        self.account = Account(
            connector, store=store, settings=settings, clock=clock, notify=notify, log=log
        )
        self.book = self.account.book
        self.book.on_close = self._after_close
        self.reconciler = self.account.reconciler
        self.lock = TraderLock(log)
        self.router = OrderRouter(
            connector,
            self.book,
            clock=clock,
            notify=notify,
            settings=settings,
            snapshot=self.snapshot,
            log=log,
            pacer=OrderPacer.for_venue(connector, clock, order_rate),
            steady=self.lock.steady,
        )
        self.guards = Guards(
            self.router, self.book, connector, settings=settings, mode=lambda: self.mode, log=log
        )
        self.router.rearm = self.guards.rearm  # a stop back beside an exit of unknown outcome
        self.exits = Exits(
            self.router,
            self.book,
            clock=clock,
            sync=self.account.sync_any,
            resolve=self.reconciler.resolve_unconfirmed,
            price=self.account.price,
            guard=self.guards.ensure,
            log=log,
            known=lambda: self.account.last_sync_at is not None,
            confirm=self.account.confirm,
        )
        self.feed = FeedConsumer.of(self.account, self.lock, settings, lambda: self.started)
        self.failsafe = Failsafe(
            self.state,
            self.lock,
            self.exits,
            settings=settings,
            clock=clock,
            log=log,
            kill_patience=kill_patience,
            lock_wait=lock_wait,
        )
        self.parts = Parts(
            label=label,
            settings=settings,
            store=store,
            clock=clock,
            notify=notify,
            log=log,
            connector=connector,
            account=self.account,
            router=self.router,
            guards=self.guards,
            state=self.state,
            lock=self.lock,
            failsafe=self.failsafe,
        )
        self.scanner = scanner or Scanner(
            connector,
            strategy,
            quote=settings.quote,
            min_quote_volume=settings.min_quote_volume,
            log=log,
            pushed=self.account.feed,
            tap=tap,
        )
        self.decisions = Decisions(self.parts, strategy, self.scanner)
        per_candidate = max(1, len(strategy.timeframes))
        self.cycle_plan = connector.fit_cycles(settings.scan_interval_seconds, per_candidate)
        self.lifecycle = Lifecycle(log)
        self.timing = Timing()
        self.entries = EntryHold(connector, label=label, clock=clock, notify=notify, log=log)
        self.cycle = Cycle(
            self.parts,
            decisions=self.decisions,
            exits=self.exits,
            lifecycle=self.lifecycle,
            timing=self.timing,
            entries=self.entries,
            start=self._start_exchange,
        )
        self.modes = ModeCommands(self.parts, stop_cycle=self.cycle.stop_step, caution=self.caution)
        self.manual = ManualCommands(
            self.parts, start=self._start_exchange, started=lambda: self.started
        )
        self.order_commands = OrderCommands(self.parts)  # /orders, /cancelorder
        self.instrument = Instrument(self.parts, strategy, self.scanner, self.order_commands)
        self.pushed_stops = PushedStops(
            self.parts,
            self.decisions.protect,
            self.failsafe,
            self.lifecycle,
            started=lambda: self.started,
        )
        self.feed.on_price = self.pushed_stops.price
        self._restored = False

    # ------------------------------------------------------------- what it is

    @property
    def mode(self) -> Mode:
        return self.state.mode

    @property
    def started(self) -> bool:
        return self.timing.started

    @property
    def last_cycle_at(self) -> float | None:
        return self.timing.last_cycle_at

    @property
    def last_cycle_seconds(self) -> float | None:
        return self.timing.last_cycle_seconds

    @property
    def last_sync_at(self) -> float | None:
        return self.account.last_sync_at

    @property
    def last_error(self) -> str | None:
        return self.state.last_error

    @property
    def tickers(self):
        return self.account.tickers

    @property
    def balance(self):
        return self.account.balance

    @property
    def aborted(self) -> bool:
        """/abort was obeyed: the process is ending and this trader does nothing more."""
        return self.state.aborted

    def status(self) -> TraderStatus:
        return status(self.parts, self.timing, self.caution(), self.feed.status())

    def info(self):
        return info(self.parts, self.timing, self.feed.status())

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Restore the book and mode from the store, load markets, reconcile. Never raises:
        if the exchange cannot be reached, the next cycle tries again."""
        if self.started:
            return
        plan, configured = self.cycle_plan, self.settings.scan_interval_seconds
        self.log.log(logging.WARNING if plan.stretched else logging.INFO,
                     plan.describe(configured, self.connector.pace()))  # fmt: skip
        self.restore()
        await self.failsafe.guarded(self._start_exchange)
        if self.started and flattens(self.mode) and self.book.positions:
            # Restored mid-kill: what is held is guarded again before the flattening resumes.
            await self.failsafe.guarded(lambda: self.guards.ensure(self.book.positions))
            self.failsafe.keep_flattening(self.failsafe.purpose())

    def restore(self) -> None:
        """The book, the mode and the bans as the store remembers them (once per process; no
        exchange I/O). Commands wait for the exchange start that follows (`ready`)."""
        if self._restored:
            return
        self._restored = True
        self.lifecycle.expect_start()
        window = max(
            self.settings.reentry_cooldown_seconds, self.settings.loop_guard_window_seconds
        )
        self.book.load(since=self.clock.time() - window)
        self.state.restore()

    async def _start_exchange(self) -> list[Difference]:
        self.restore()
        try:
            await self.connector.load_markets(critical=True)
            differences = await self.account.sync()
        finally:
            self.lifecycle.start_tried()
        self.timing.started = True
        self.feed.start()
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
        await self.lifecycle.drain(0.0 if self.aborted else grace)

    async def close(self) -> None:
        """Stop background work (the flattening retry loop, the event feed); the connector is
        the caller's."""
        await self.failsafe.stop()
        await self.feed.close()
        await self.pushed_stops.close()

    # ------------------------------------------------------------ the cycle

    async def run_cycle(self) -> None:
        """One scheduled cycle: sync -> scan -> decide -> execute. Never raises."""
        await self.cycle.run()

    async def run_sync(self) -> None:
        """The scheduled sync job. Never raises; skipped while a cycle or a command runs."""
        await self.cycle.run_sync()

    # ------------------------------------------------------ what the gate sees

    def snapshot(self) -> RiskSnapshot:
        bans = frozenset(self.store.bans(self.label))
        return self.account.snapshot(self.mode, bans=bans, caution=self.caution())

    def caution(self) -> str | None:
        return self.entries.caution()

    def _after_close(self, trade: ClosedTrade) -> None:
        """Every closed round trip: remember it for kill reports, run the loop guard."""
        self.account.closed_trade(trade)
        self.manual.loop_guard(trade.symbol)

    # ------------------------------------------------- the commands, delegated

    async def pause(self, *, hands_off: bool = False):
        return await self.modes.pause(hands_off=hands_off)

    async def unpause(self):
        return await self.modes.unpause()

    async def stop(self):
        return await self.modes.stop()

    async def resume(self):
        return await self.modes.resume()

    async def kill(self):
        return await self.modes.kill()

    async def abort(self):
        return await self.modes.abort()

    async def reset_paper(self):
        return await reset_paper(self.parts)

    def unresolved(self) -> list[str]:
        return self.modes.unresolved()

    async def sync(self):
        return await self.manual.sync()

    async def buy(self, symbol: str, quote_amount=None, *, stop=None, target=None, limit=None):
        return await self.manual.buy(symbol, quote_amount, stop=stop, target=target, limit=limit)

    async def sell(self, symbol: str, amount: float | None = None, *, fraction=None):
        return await self.manual.sell(symbol, amount, fraction=fraction)

    async def ban(self, symbol: str):
        return await self.manual.ban(symbol)

    async def unban(self, symbol: str):
        return await self.manual.unban(symbol)

    def bans(self):
        return self.manual.bans()

    def locks(self):
        return self.manual.locks()

    async def unlock(self, symbol: str):
        return self.manual.unlock(symbol)

    def knows_symbol(self, symbol: str) -> bool:
        return symbol in self.connector.markets

    def leftovers(self) -> list[str]:
        return self.account.leftovers()

    def price(self, symbol: str) -> float:
        return self.account.price(symbol)
