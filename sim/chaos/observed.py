"""The real bot, observed by the chaos referee (sim/chaos/referee.py): a Connector that remembers
what the exchange looked like when each sync began, and a Trader that, after every successful
sync, lets the Monitor compare its book, the store and the exchange, and tells it every mode
change and every mode command with the mode it met. Nothing else differs from the bot."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from sim.chaos.causes import COMMAND
from trading.connector import Connector
from trading.engine import Trader
from trading.models import AccountState
from trading.modes import Mode
from trading.reconcile import Difference
from trading.results import KillResult, ModeResult
from trading.venues.paper import PaperExchange

if TYPE_CHECKING:
    from sim.chaos.referee import Monitor


class FaultyVenue(Protocol):
    """What the Monitor reads of the chaos venue (sim/chaos/venue.py)."""

    paper: PaperExchange
    created: int  # orders sent so far
    faults: int  # faults raised so far (a retired endpoint's excepted)
    denied: set[str]  # order ids a lookup was refused for (when injected: a lie)

    def unsettled(self) -> bool:
        """Whether a fault is pending (a retired endpoint's excepted)."""


class ObservedConnector(Connector):
    """Remembers, per task, what the exchange looked like when each sync began, so the check
    after reconciliation can tell whether anything moved meanwhile."""

    def __init__(self, venue: Any, *, monitor: Monitor, **kwargs) -> None:
        super().__init__(venue, **kwargs)
        self.chaos: FaultyVenue = venue
        self.monitor = monitor
        # per task: (orders sent, the exchange's balance) when its latest sync began
        self.states: dict[asyncio.Task | None, tuple[int, dict[str, float]]] = {}

    async def sync(self) -> AccountState:
        before = (self.chaos.created, dict(self.chaos.paper.peek_balance().total))
        began = self._clock.monotonic()
        state = await super().sync()
        self.monitor.causes.synced(began)
        self.monitor.books.listed(state.open_orders)
        self.states[asyncio.current_task()] = before
        return state


class ObservedTrader(Trader):
    """The real Trader; after every successful sync the Monitor compares book, store and the
    exchange, and it hears of every mode change and mode command."""

    monitor: Monitor

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The bot's public hooks: after every successful sync, before every mode change.
        self.account.on_synced = self._synced
        self.state.on_mode = self._mode_set
        self._restore_seen = False

    def _synced(self, differences: list[Difference]) -> None:
        connector = self.connector
        if isinstance(connector, ObservedConnector):
            seen = connector.states.pop(asyncio.current_task(), None)
            if seen is not None:
                self.monitor.after_sync(differences, created=seen[0], totals=seen[1])

    def restore(self) -> None:
        fresh = not self._restore_seen
        self._restore_seen = True
        super().restore()
        if fresh:
            self.monitor.causes.restored(self.mode)

    def _mode_set(self, old: Mode, new: Mode, reason: str) -> None:
        errand = COMMAND.get()
        self.monitor.causes.mode_set(old, new, reason, errand.name if errand else None)
        if old is Mode.HANDS_OFF and new is not Mode.HANDS_OFF:
            self.monitor.protection.bared(self.book.positions)

    async def pause(self, *, hands_off: bool = False) -> ModeResult:
        mode = self.mode
        result = await super().pause(hands_off=hands_off)
        self.monitor.protection.command_answered()
        name = "pause hands-off" if hands_off else "pause"
        self.monitor.causes.mode_command(name, mode, result.ok)
        return result

    async def unpause(self) -> ModeResult:
        return await self._mode_command("unpause", super().unpause)

    async def resume(self) -> ModeResult:
        return await self._mode_command("resume", super().resume)

    async def stop(self) -> ModeResult:
        return await self._mode_command("stop", super().stop)

    async def kill(self) -> KillResult:
        return await self._mode_command("kill", super().kill)

    async def _mode_command(self, name: str, operation):
        mode = self.mode
        result = await operation()
        self.monitor.protection.command_answered()
        self.monitor.causes.mode_command(name, mode, result.ok)
        return result
