"""The trader's dead switch, its mode changes and its one-operation-at-a-time lock.

Whatever a cycle raises is classified in `_guarded`, in one place:

    Transient / RateLimited / Rejected / the rest of the cycle is skipped; nothing changes
    Unrecognized (every Recoverable)     (an Unrecognized answer that persists comes back
                                         from the connector as a Fatal)
    Fatal                                entries stop, an emergency is raised, and then either
                                         FAILSAFE (flatten) or HALTED (no entries, positions
                                         left to their stops), as FAILSAFE_ON_FATAL says
    anything else (a bug)                FAILSAFE: cancel all, exit all, retried with capped
                                         backoff until flat, with an emergency

Flattening answers within `kill_patience` seconds; if it is not flat by then a background
task keeps trying until it is, and the "<purpose>-not-flat" emergency stays raised until then.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from trading.errors import Fatal, Recoverable
from trading.events import Emergency, EmergencyCleared, StateChanged
from trading.exits import FlattenReport, FlattenRound, backoff
from trading.modes import PAUSES, Mode, Purpose, flattens

if TYPE_CHECKING:
    from trading.engine import Trader

class TraderBusy(Exception):
    """A command could not get the trader's lock in time (a cycle is still running)."""


class Failsafe:
    """Mixed into Trader: fault classification, the dead switch, modes, emergencies."""

    async def _guarded(self: Trader, step, *, exclusive: bool = False) -> None:
        """Run a step; classify whatever it raises. The dead switch lives here."""
        try:
            if exclusive:
                async with self.exclusive():
                    await step()
            else:
                await step()
        except asyncio.CancelledError:
            raise
        except Fatal as fault:
            self.last_error = str(fault)
            await self._safely(self._on_fatal(fault))
        except Recoverable as fault:  # including a stray Rejected: skip, no change
            self.last_error = str(fault)
            self.log.info("cycle skipped: %s: %s", fault.kind, fault)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            await self._safely(self._dead_switch(exc))

    async def _safely(self: Trader, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            if self.mode in PAUSES:
                self.log.exception("the dead switch itself failed while paused")
                return
            self.log.exception("the dead switch itself failed; flattening in the background")
            if not flattens(self.mode):
                self.mode = Mode.FAILSAFE  # even if the store cannot record it
            self._keep_flattening(self.flatten_purpose())

    async def _on_fatal(self: Trader, fault: Fatal) -> None:
        message = f"fatal exchange fault: {fault}"
        if self.mode in PAUSES or self.mode in (Mode.FAILSAFE, Mode.KILLED, Mode.HALTED):
            # Paused (the owner has taken over), flattening or halted already: tell the owner
            # once until /resume (not every cycle), change nothing.
            self.log.error("fatal fault while %s: %s", self.mode, fault)
            if "fatal" not in self._emergencies:
                self.emergency("fatal", f"{message} (while {self.mode}: nothing more is done)")
            return
        if self.settings.failsafe_on_fatal == "stop":
            self.set_mode(Mode.HALTED, message)
            self.emergency(
                "fatal",
                f"{message}. No entries until /resume; positions left to their stops.",
            )
            return
        self.set_mode(Mode.FAILSAFE, message)
        self.emergency(
            "fatal",
            f"{message}. Cancelling all orders and exiting all positions "
            "(/pause leaves them to their stops instead).",
        )
        await self._flatten_now(Purpose.FAILSAFE)

    async def _dead_switch(self: Trader, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"[:300]
        if self.mode in PAUSES:
            self.log.error("bug in the trading cycle while %s", self.mode, exc_info=exc)
            self.emergency("failsafe", f"bug in the cycle ({text}) while paused: nothing is sold")
            return
        self.log.error("bug in the trading cycle: failsafe", exc_info=exc)
        self.set_mode(Mode.FAILSAFE, f"bug in the cycle: {text}")
        self.emergency(
            "failsafe",
            f"bug in the cycle ({text}): cancelling all orders and exiting all "
            "(/pause leaves positions to their stops instead)",
        )
        await self._flatten_now(Purpose.FAILSAFE)

    async def _flatten_now(self: Trader, purpose: Purpose) -> FlattenReport:
        """Flatten with patience, then keep retrying in the background if not flat. A round
        that leaves anything behind raises the "<purpose>-not-flat" emergency at once; it is
        cleared when flat."""
        key = f"{purpose}-not-flat"

        def not_flat(result: FlattenRound) -> None:
            if key not in self._emergencies:
                held = ", ".join(result.remaining) or "flat, unconfirmed"
                problem = result.problems[0] if result.problems else ""
                self.emergency(key, f"{purpose}: not flat ({held}) {problem}; retrying until flat")

        async with self.exclusive(self.lock_wait, force=True):
            report = await self.exits.flatten(
                purpose, patience=self.kill_patience, on_retry=not_flat
            )
        if report.flat:
            self.clear_emergency(key, f"{purpose}: flat")
        else:
            self._keep_flattening(purpose)
        return report

    def _keep_flattening(self: Trader, purpose: Purpose) -> None:
        if self._flattening is not None and not self._flattening.done():
            return
        self._flattening = asyncio.get_running_loop().create_task(self._flatten_loop(purpose))

    async def _flatten_loop(self: Trader, purpose: Purpose) -> None:
        attempt = 0
        while flattens(self.mode) and not self._aborted:
            attempt += 1
            await self.clock.sleep(backoff(attempt))
            try:
                async with self.exclusive(self.lock_wait, force=True):
                    if not flattens(self.mode):
                        return  # paused or resumed while this round waited for the lock
                    result = await self.exits.flatten_round(purpose)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("flatten round %d raised", attempt)
                continue
            if result.flat:
                self.clear_emergency(f"{purpose}-not-flat", f"{purpose}: flat")
                return

    @asynccontextmanager
    async def exclusive(self: Trader, wait: float | None = None, *, force: bool = False):
        """One operation at a time (re-entrant within a task). With `wait`, give up after that
        many seconds: raise TraderBusy, or with `force` (a kill, a failsafe) go ahead anyway;
        the new mode already refuses whatever the running cycle would still try."""
        me = asyncio.current_task()
        if self._lock_owner is not None and self._lock_owner is me:
            yield
            return
        acquire = asyncio.ensure_future(self._lock.acquire())
        try:
            done, _ = await asyncio.wait({acquire}, timeout=wait)
        except asyncio.CancelledError:
            # Cancelled while waiting (a /resume stops the flattening): the request must not go
            # on to take the lock with nobody left to release it.
            _abandon(acquire, self._lock)
            raise
        if not done:
            _abandon(acquire, self._lock)
            if not force:
                raise TraderBusy("a cycle is still running; try again in a moment")
            self.log.warning("going ahead without waiting longer for the running cycle")
            yield
            return
        self._lock_owner = me
        try:
            yield
        finally:
            self._lock_owner = None
            self._lock.release()

    # -- modes and emergencies

    def set_mode(self: Trader, new: Mode, reason: str) -> None:
        old = self.mode
        if new is old:
            return
        self.mode = new
        now = self.clock.time()
        self.store.set_mode(self.label, str(new), now)
        if new is Mode.STOPPING:
            self.store.set_meta(f"stop_started:{self.label}", repr(now))
        self.log.warning("%s -> %s: %s", old, new, reason)
        self.notify(
            StateChanged(account=self.label, at=now, old=str(old), new=str(new), reason=reason)
        )

    def emergency(self: Trader, key: str, message: str) -> None:
        self._emergencies.add(key)
        self.notify(
            Emergency(
                account=self.label, at=self.clock.time(), key=f"{key}:{self.label}", message=message
            )
        )

    def clear_emergency(self: Trader, key: str, message: str) -> None:
        """Close a condition raised earlier (a key never raised is not cleared)."""
        if key not in self._emergencies:
            return
        self._emergencies.discard(key)
        self.notify(
            EmergencyCleared(
                account=self.label, at=self.clock.time(), key=f"{key}:{self.label}", message=message
            )
        )


def _abandon(acquire: asyncio.Future, lock: asyncio.Lock) -> None:
    """Withdraw a lock request; if it is granted all the same, give the lock straight back."""
    acquire.add_done_callback(_release_if_acquired(lock))
    acquire.cancel()


def _release_if_acquired(lock: asyncio.Lock):
    def callback(task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is None:
            lock.release()

    return callback
