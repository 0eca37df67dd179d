"""The mode commands: /pause, /unpause, /stop, /resume, /kill, /abort, each returning a result
dataclass (trading/results.py) and never raising. Where each leads is the mode table
(trading/modes.py); a command that changes nothing says why (ok=False and a reason).

Kill and pause change the mode first, so that a cycle still running places nothing more, then
take the trader's lock to act.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from trading.errors import Fault
from trading.lock import Preempt
from trading.models import Side
from trading.modes import Command, Mode, Purpose, after, flattens, guards
from trading.pacing import Priority, at
from trading.parts import Parts
from trading.results import AbortResult, KillResult, ModeResult


class ModeCommands:
    """What /pause, /stop, /kill, /resume ... do to one trader."""

    def __init__(
        self,
        parts: Parts,
        *,
        stop_cycle: Callable[[], Awaitable[None]],
        caution: Callable[[], str | None],
    ) -> None:
        self.parts = parts
        self._stop_cycle = stop_cycle
        self._caution = caution

    async def pause(self, *, hands_off: bool = False) -> ModeResult:
        """No entries, no strategy exits, no flattening; open orders cancelled. Positions keep
        their stop-loss and take-profit (and the stops resting at the exchange), unless
        `hands_off`: then nothing at all is sold and every order goes."""
        p, state = self.parts, self.parts.state
        old = state.mode
        new = after(Command.HANDS_OFF if hands_off else Command.PAUSE, old)
        assert isinstance(new, Mode)
        if new is old:
            return self._result(old, reason=f"already {old}")
        state.set_mode(new, "hands-off pause command" if hands_off else "pause command")
        await p.failsafe.stop()  # a kill's or failsafe's flattening stops here
        try:
            with at(Priority.EXIT):  # cancels only; what stays is protected by the stops
                async with p.lock.exclusive(p.failsafe.lock_wait, force=True):
                    keep = () if hands_off else (Purpose.GUARD,)  # a plain pause keeps stops
                    cancelled, failures = await p.router.cancel_all(keep=keep)
                    if not hands_off:  # a stop's OCO exit took its stop with it: back now
                        # The pause has taken effect: a fault or a bug putting a stop back
                        # is handled as in a cycle, never answered as a refused /pause.
                        await p.failsafe.guarded(
                            functools.partial(p.guards.ensure, list(p.book.positions))
                        )
        except Fault as fault:  # what stays open is cancelled by the next (paused) cycle
            cancelled, failures = 0, [f"{fault.kind}: {fault.message}"]
        except Exception as exc:
            return await p.bug(exc, self._refuse)
        return self._result(old, cancelled=cancelled, reason="; ".join(failures))

    async def unpause(self) -> ModeResult:
        """Back to what the pause interrupted: running, or the stop, kill or failsafe."""
        state = self.parts.state
        old = state.mode
        new = after(Command.UNPAUSE, old, paused_from=state.paused_from())
        if not isinstance(new, Mode):
            hint = " (use /resume)" if old is not Mode.RUNNING else ""
            return self._refuse(new + hint)
        state.set_mode(new, "unpause command")
        await self._guard_again(old, new)
        exiting = len(self.parts.book.positions) if new is Mode.STOPPING or flattens(new) else 0
        return self._result(old, exiting=exiting)

    async def stop(self) -> ModeResult:
        """No new entries; exit every position with limit orders at the touch, then STOPPED."""
        p, state = self.parts, self.parts.state
        old = state.mode
        if old is Mode.STOPPING:
            held = len(p.book.positions)
            return self._result(old, exiting=held, reason="already stopping")
        new = after(Command.STOP, old)
        assert isinstance(new, Mode)
        state.set_mode(new, "stop command")
        await p.failsafe.stop()  # a kill's or failsafe's flattening gives way to the stop
        try:
            with at(Priority.EXIT):
                lock = p.lock.exclusive(p.failsafe.lock_wait, force=True, preempt=Preempt.CYCLE)
                async with lock:
                    for tracked in p.book.open_orders():
                        if tracked.side is Side.BUY:
                            await p.quietly(p.router.cancel(tracked))
                    await p.failsafe.guarded(self._stop_cycle)
        except Exception as exc:
            return await p.bug(exc, self._refuse)
        return self._result(old, exiting=len(p.book.positions))

    async def resume(self) -> ModeResult:
        """Back to RUNNING from any mode. What was unresolved (positions a stop, kill or
        failsafe had not exited yet, open emergencies) is named in the confirmation the
        command asks for, and in the result: those positions are managed again."""
        p, state = self.parts, self.parts.state
        old = state.mode
        new = after(Command.RESUME, old)
        if not isinstance(new, Mode):
            return self._refuse(new)
        unresolved = self.unresolved()
        await p.failsafe.stop()
        state.set_mode(new, "resume command")
        state.clear_all("resumed")
        await self._guard_again(old, new)
        return self._result(old, reason="; ".join(unresolved))

    async def _guard_again(self, old: Mode, new: Mode) -> None:
        """Out of the hands-off pause into a mode that keeps stops, or out of a stop whose limit
        exits still rest (the new mode does not let them out): each position's stop goes back on
        before the command answers, in place of those exits, not at the next cycle (a host that
        dies meanwhile, or a sync that keeps failing, never runs it). A fault is handled as in
        a cycle."""
        p = self.parts
        if not guards(new) or not p.book.positions:
            return
        if guards(old) and not p.guards.outdated():
            return

        async def put_back() -> None:
            await p.guards.ensure(list(p.book.positions))

        with at(Priority.EXIT):
            async with p.lock.exclusive(p.failsafe.lock_wait, force=True):
                await p.failsafe.guarded(put_back)

    def unresolved(self) -> list[str]:
        """What a /resume would leave as it is: said before the owner confirms it."""
        p, state = self.parts, self.parts.state
        notes: list[str] = []
        if state.mode is not Mode.RUNNING and p.book.positions:
            held = ", ".join(sorted(p.book.positions))
            notes.append(f"{state.mode}: still holding {held} (managed again, with their stops)")
        if state.emergencies:
            notes.append("open emergencies: " + ", ".join(sorted(state.emergencies)))
        caution = self._caution()
        if caution:
            notes.append(f"entries stay held: {caution}")
        failing = p.connector.health.sync_failing_since
        if failing is not None:
            seconds = p.clock.time() - failing
            notes.append(f"the account sync has been failing for {seconds:.0f} s")
        return notes

    async def kill(self) -> KillResult:
        """Cancel all orders, market-exit every position at once, confirm flat by a sync."""
        p, state = self.parts, self.parts.state
        if state.mode is Mode.KILLED and not p.book.positions and not p.failsafe.retrying:
            return KillResult(
                account=p.label,
                ok=False,
                mode=state.mode,
                reason="already killed",
                flat=True,
                left=tuple(p.account.leftovers()),
            )
        mark = p.account.closes
        state.set_mode(Mode.KILLED, "kill command")
        try:
            report = await p.failsafe.flatten_now(Purpose.KILL)
        except Exception:
            p.log.exception("kill raised; flattening goes on in the background")
            p.failsafe.keep_flattening(Purpose.KILL)
            return KillResult(
                account=p.label,
                ok=True,
                mode=state.mode,
                reason="internal error during the kill; retrying until flat",
                remaining=tuple(p.book.positions),
            )
        last = report.rounds[-1] if report.rounds else None
        return KillResult(
            account=p.label,
            ok=True,
            mode=state.mode,
            reason="" if report.flat else "not flat yet; retrying until flat",
            flat=report.flat,
            cancelled=sum(r.cancelled for r in report.rounds),
            closed=p.account.closed_since(mark),
            remaining=report.remaining if last else tuple(p.book.positions),
            rounds=len(report.rounds),
            seconds=report.seconds,
            problems=report.problems[-10:],
            left=tuple(p.account.leftovers()),
        )

    async def abort(self) -> AbortResult:
        """Stop trading at once, touching nothing; returns what stays open at the exchange."""
        p = self.parts
        p.state.aborted = True
        await p.failsafe.stop()
        return AbortResult(
            account=p.label,
            ok=True,
            mode=p.state.mode,
            positions=tuple(p.book.positions.values()),
            open_orders=tuple(t.order for t in p.book.orders.values()),
        )

    def _result(
        self, old: Mode, *, cancelled: int = 0, exiting: int = 0, reason: str = ""
    ) -> ModeResult:
        p = self.parts
        return ModeResult(
            account=p.label,
            ok=True,
            mode=p.state.mode,
            old=old,
            cancelled=cancelled,
            exiting=exiting,
            reason=reason,
            positions=len(p.book.positions),
        )

    def _refuse(self, reason: str) -> ModeResult:
        mode = self.parts.state.mode
        return ModeResult(account=self.parts.label, ok=False, mode=mode, old=mode, reason=reason)
