"""What a trader's collaborators share: handed to each explicitly, so none of them reaches
back into the Trader (no mixins, no import cycle).

    Trader (engine.py)      the lifecycle; builds the parts and delegates commands
    ├── cycle.py            the scheduled cycle and sync job
    ├── state.py            mode, emergencies, last error
    ├── lock.py             one operation at a time
    ├── account.py          book, balance, prices, the sync
    ├── orders.py           the router: every order through the gate
    ├── guards.py           the stops resting at the exchange
    ├── exits.py            flattening and the stop's exits
    ├── failsafe.py         the dead switch
    ├── operations.py       mode commands: pause, stop, kill, resume, abort
    ├── manual.py           sync, buy, sell, bans
    └── status.py           info() and status(): what handlers, /healthz and /metrics read
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from trading.account import Account
from trading.clock import Clock
from trading.connector import Connector
from trading.errors import Fault
from trading.events import Notify
from trading.failsafe import Failsafe
from trading.guards import Guards
from trading.lock import Preempt, TraderBusy, TraderLock
from trading.orders import OrderRouter
from trading.settings import TradingSettings
from trading.state import TraderState
from trading.store import Store

R = TypeVar("R")


@dataclass
class Parts:
    """One trader's collaborators."""

    label: str
    settings: TradingSettings
    store: Store
    clock: Clock
    notify: Notify
    log: logging.Logger
    connector: Connector
    account: Account
    router: OrderRouter
    guards: Guards
    state: TraderState
    lock: TraderLock
    failsafe: Failsafe

    @property
    def book(self):
        return self.account.book

    async def locked(
        self, body: Callable[[], Awaitable[R]], refuse: Callable[[str], R]
    ) -> R:
        """Run a command's body under the trader's lock, pre-empting a running cycle (another
        command is waited for, bounded). Busy: a refusal. A bug in order code: the dead switch,
        as in a cycle, and the user is told."""
        try:
            async with self.lock.exclusive(self.failsafe.lock_wait, preempt=Preempt.READS):
                return await body()
        except TraderBusy as busy:
            return refuse(str(busy))
        except Exception as exc:
            return await self.bug(exc, refuse)

    async def bug(self, exc: Exception, refuse: Callable[[str], R]) -> R:
        """A bug in a command's order code: the dead switch, as in a cycle; the user is told."""
        await self.failsafe.safely(self.failsafe.dead_switch(exc))
        return refuse(f"internal error ({type(exc).__name__}); the trader is {self.state.mode}")

    async def quietly(self, coro: Awaitable[object]) -> None:
        """An order step (a cancel, a stop's placement) whose failure the next cycle retries."""
        try:
            await coro
        except Fault as fault:
            self.log.info("%s failed: %s", fault.call or "order step", describe(fault))


def describe(fault: Fault) -> str:
    return f"{fault.kind}: {fault.message}"
