"""One trader's scheduled work: the cycle (sync -> scan -> decide -> execute) and the sync job.

What a cycle does follows the mode (trading/modes.py): RUNNING trades, STOPPING exits step by
step, every other mode holds (pauses keep only the positions' stops, flattening modes keep the
retry loop going, protective modes check stops and targets). A recoverable fault in the sync
skips the rest of the cycle, but stops and take-profits still act on the last known book.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from trading.decisions import Decisions
from trading.entry_hold import EntryHold
from trading.errors import Recoverable
from trading.exits import Exits
from trading.lifecycle import Lifecycle
from trading.modes import PAUSES, Mode, Purpose, checks_protection, flattens, guards
from trading.parts import Parts
from trading.status import Timing

_STOPS = (Purpose.GUARD,)  # what a plain pause leaves resting


class Cycle:
    """Runs one trader's cycles and sync jobs; `start` is the trader's exchange start."""

    def __init__(
        self,
        parts: Parts,
        *,
        decisions: Decisions,
        exits: Exits,
        lifecycle: Lifecycle,
        timing: Timing,
        entries: EntryHold,
        start: Callable[[], Awaitable[object]],
    ) -> None:
        self.parts = parts
        self.decisions = decisions
        self.exits = exits
        self.lifecycle = lifecycle
        self.timing = timing
        self.entries = entries
        self._start = start

    async def run(self) -> None:
        """One scheduled cycle: sync -> scan -> decide -> execute. Never raises."""
        p = self.parts
        if p.state.aborted or self.lifecycle.closing:
            return
        started = p.clock.monotonic()
        try:
            async with self.lifecycle.run():
                await p.failsafe.guarded(self._cycle, exclusive=True)
        finally:
            self.timing.last_cycle_at = p.clock.time()
            self.timing.last_cycle_seconds = p.clock.monotonic() - started
        self.entries.announce()

    async def run_sync(self) -> None:
        """The scheduled sync job. Never raises; skipped while a cycle or a command runs."""
        p = self.parts
        if p.state.aborted or self.lifecycle.closing or p.lock.locked():
            return
        async with self.lifecycle.run():
            await p.failsafe.guarded(self._sync_only, exclusive=True)

    async def _sync_only(self) -> None:
        if not self.timing.started:
            await self._start()
            return
        with self.parts.lock.reading():
            await self.parts.account.sync()

    async def _cycle(self) -> None:
        p = self.parts
        try:
            if not self.timing.started:
                await self._start()
            elif p.account.sync_due():
                with p.lock.reading():
                    await p.account.sync()
        except Exception as exc:  # not a shutdown's cancellation: that ends the run quietly
            if not self.timing.started and flattens(p.state.mode) and p.book.positions:
                # Restored killed or in failsafe: the flattening gets out past a failing start
                # (it sells without a sync); the next cycles keep trying the start.
                p.failsafe.keep_flattening(p.failsafe.purpose())
            if isinstance(exc, Recoverable):
                await self._protect_blind()
            raise
        mode = p.state.mode
        if mode is Mode.RUNNING:
            await self.decisions.trade()
        elif mode is Mode.STOPPING:
            await self.stop_step()
        else:
            await self._hold(mode)
        await p.account.guard_dead_man()
        p.account.report_equity()

    async def _hold(self, mode: Mode) -> None:
        """A cycle that opens nothing: paused, stopped, killed, failsafe, halted."""
        p = self.parts
        if mode in PAUSES and any(t.confirmed for t in p.book.orders.values()):
            # Adopted by the sync: a pause holds no order but the positions' stops.
            await p.router.cancel_all(keep=() if mode is Mode.HANDS_OFF else _STOPS)
        fresh = await p.account.price_positions()
        if flattens(mode):
            if p.book.positions:
                p.failsafe.keep_flattening(p.failsafe.purpose())
        elif checks_protection(mode):
            await self.decisions.protect(list(p.book.positions), fresh)
        if guards(mode):  # between flatten rounds too: each round lifts them one by one
            await p.guards.ensure(p.book.positions)

    async def _protect_blind(self) -> None:
        """The account cannot be read, the prices can: stops act on the last known book."""
        p = self.parts
        mode = p.state.mode
        if not self.timing.started or not checks_protection(mode) or flattens(mode):
            return
        fresh = await p.account.price_positions()
        await self.decisions.protect(list(p.book.positions), fresh)

    async def stop_step(self) -> None:
        """A STOPPING cycle's step: exit what is left; STOPPED once every position is out."""
        p = self.parts
        await p.account.price_positions()
        elapsed = p.clock.time() - p.state.stop_started()
        done = await self.exits.stop_step(
            p.account.tickers,
            elapsed=elapsed,
            market_after=p.settings.stop_exit_timeout_seconds,
        )
        if done:
            p.state.set_mode(Mode.STOPPED, "every position exited")
