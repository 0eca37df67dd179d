"""The trader's dead switch: whatever a cycle raises is classified here, in one place.

    a Recoverable fault       the rest of the cycle is skipped; nothing changes (Transient,
    (Unrecognized too)        RateLimited, a stray Rejected; an unrecognised answer also holds
                              entries, and becomes Fatal if it persists)
    Fatal                     entries stop, one emergency is raised, and then either FAILSAFE
                              (flatten) or HALTED (no entries, positions left to their stops),
                              as FAILSAFE_ON_FATAL says
    anything else (a bug)     FAILSAFE: cancel all, exit all, retried with capped backoff until
                              flat, with an emergency

While the owner has taken over (PAUSED, HANDS_OFF) nothing here changes the mode or sells: the
owner is told. Flattening answers within `kill_patience` seconds; if it is not flat by then a
background task keeps trying until it is, and the "<purpose>-not-flat" emergency stays raised
until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

from trading.clock import Clock
from trading.errors import Fatal, Recoverable
from trading.exits import Exits, FlattenReport, FlattenRound, backoff
from trading.lock import Preempt, TraderLock
from trading.modes import PAUSES, Mode, Purpose, flattens
from trading.pacing import Priority, at
from trading.settings import TradingSettings
from trading.state import TraderState


class Failsafe:
    """Classifies what a trader's steps raise, and flattens when it must."""

    def __init__(
        self,
        state: TraderState,
        lock: TraderLock,
        exits: Exits,
        *,
        settings: TradingSettings,
        clock: Clock,
        log: logging.Logger,
        kill_patience: float = 20.0,
        lock_wait: float = 5.0,
    ) -> None:
        self.state = state
        self.lock = lock
        self.exits = exits
        self.settings = settings
        self.clock = clock
        self.log = log
        self.kill_patience = kill_patience  # seconds a kill retries before answering
        self.lock_wait = lock_wait  # seconds a kill waits for a running command (a cycle yields)
        self.flattening: asyncio.Task[None] | None = None  # the background retry, if any

    def purpose(self) -> Purpose:
        """What the current flattening is: a kill's or the dead switch's."""
        return Purpose.KILL if self.state.mode is Mode.KILLED else Purpose.FAILSAFE

    @property
    def retrying(self) -> bool:
        return self.flattening is not None and not self.flattening.done()

    async def guarded(
        self, step: Callable[[], Awaitable[object]], *, exclusive: bool = False
    ) -> None:
        """Run a step; classify whatever it raises."""
        state = self.state
        try:
            if exclusive:  # a cycle or a scheduled sync: an exit or a command may pre-empt it
                async with self.lock.exclusive(preemptible=True):
                    await step()
            else:
                await step()
        except asyncio.CancelledError:
            raise
        except Fatal as fault:
            state.last_error = str(fault)
            await self.safely(self.on_fatal(fault))
        except Recoverable as fault:  # including a stray Rejected: skip, no change
            state.last_error = str(fault)
            self.log.info("cycle skipped: %s: %s", fault.kind, fault)
        except Exception as exc:
            state.last_error = f"{type(exc).__name__}: {exc}"
            await self.safely(self.dead_switch(exc))

    async def safely(self, coro: Awaitable[object]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            if self.state.mode in PAUSES:
                self.log.exception("the dead switch itself failed while paused")
                return
            self.log.exception("the dead switch itself failed; flattening in the background")
            if not flattens(self.state.mode):
                self.state.mode = Mode.FAILSAFE  # even if the store cannot record it
            self.keep_flattening(self.purpose())

    async def on_fatal(self, fault: Fatal) -> None:
        state = self.state
        message = f"fatal exchange fault: {fault}"
        if state.mode in PAUSES or state.mode in (Mode.FAILSAFE, Mode.KILLED, Mode.HALTED):
            # Paused (the owner has taken over), flattening or halted already: tell the owner
            # once until /resume (not every cycle), change nothing.
            self.log.error("fatal fault while %s: %s", state.mode, fault)
            if "fatal" not in state.emergencies:
                state.emergency("fatal", f"{message} (while {state.mode}: nothing more is done)")
            return
        if fault.halt:
            # Rate-limited for the whole limit: selling everything would go through the same
            # throttled pipe; the owner decides.
            state.set_mode(Mode.HALTED, message)
            state.emergency(
                "fatal",
                f"{message}. The exchange keeps rate-limiting the bot: no entries, positions "
                "left to their stops; /resume when it answers, /kill to get out.",
            )
            return
        if self.settings.failsafe_on_fatal == "stop":
            state.set_mode(Mode.HALTED, message)
            state.emergency(
                "fatal",
                f"{message}. No entries until /resume; positions left to their stops.",
            )
            return
        state.set_mode(Mode.FAILSAFE, message)
        state.emergency(
            "fatal",
            f"{message}. Cancelling all orders and exiting all positions "
            "(/pause leaves them to their stops instead).",
        )
        await self.flatten_now(Purpose.FAILSAFE)

    async def dead_switch(self, exc: Exception) -> None:
        state = self.state
        text = f"{type(exc).__name__}: {exc}"[:300]
        if state.mode in PAUSES:
            self.log.error("bug in the trading cycle while %s", state.mode, exc_info=exc)
            state.emergency("failsafe", f"bug in the cycle ({text}) while paused: nothing is sold")
            return
        self.log.error("bug in the trading cycle: failsafe", exc_info=exc)
        state.set_mode(Mode.FAILSAFE, f"bug in the cycle: {text}")
        state.emergency(
            "failsafe",
            f"bug in the cycle ({text}): cancelling all orders and exiting all "
            "(/pause leaves positions to their stops instead)",
        )
        await self.flatten_now(Purpose.FAILSAFE)

    async def flatten_now(self, purpose: Purpose) -> FlattenReport:
        """Flatten with patience, then keep retrying in the background if not flat. A round
        that leaves anything behind raises the "<purpose>-not-flat" emergency at once; it is
        cleared when flat."""
        state = self.state
        key = f"{purpose}-not-flat"

        def not_flat(result: FlattenRound) -> None:
            if key not in state.emergencies:
                held = ", ".join(result.remaining) or "flat, unconfirmed"
                problem = result.problems[0] if result.problems else ""
                state.emergency(key, f"{purpose}: not flat ({held}) {problem}; retrying until flat")

        with at(Priority.EXIT):
            async with self.lock.exclusive(self.lock_wait, force=True, preempt=Preempt.CYCLE):
                report = await self.exits.flatten(
                    purpose, patience=self.kill_patience, on_retry=not_flat
                )
        if report.flat:
            state.clear_emergency(key, f"{purpose}: flat")
        else:
            self.keep_flattening(purpose)
        return report

    def keep_flattening(self, purpose: Purpose) -> None:
        if self.retrying:
            return
        self.flattening = asyncio.get_running_loop().create_task(self._flatten_loop(purpose))

    async def stop(self) -> None:
        """Stop the background flattening (a pause, a resume, a shutdown)."""
        task, self.flattening = self.flattening, None
        if task is not None and not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _flatten_loop(self, purpose: Purpose) -> None:
        state = self.state
        attempt = 0
        while flattens(state.mode) and not state.aborted:
            attempt += 1
            await self.clock.sleep(backoff(attempt))
            try:
                with at(Priority.EXIT):
                    async with self.lock.exclusive(
                        self.lock_wait, force=True, preempt=Preempt.CYCLE
                    ):
                        if not flattens(state.mode):
                            return  # paused or resumed while this round waited for the lock
                        result = await self.exits.flatten_round(purpose)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("flatten round %d raised", attempt)
                continue
            if result.flat:
                state.clear_emergency(f"{purpose}-not-flat", f"{purpose}: flat")
                return
