"""One position of an account without its resting stop at a time.

An exit of the bot's own lifts the position's stop (a cancel) and then sells, and the sell may
only go once the cancel is answered (the stop may have sold the coins meanwhile). A flatten
runs its positions' exits side by side, so without a gate every position's cancel left while
the first one's answer was still on its way: a host that died then left every position bare
until it came back (chaos seed 76: four of them, for fourteen minutes). The gate lets a
position's stop be lifted only once the previous lifted position's sell has gone out: one
position at a time is bare between a cancel and its sell, while the sells themselves, once
sent, still overlap at the exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class LiftGate:
    """Held from a stop's lift until its position's sell is sent (or the exit gives up)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def lifting(self, needed: bool = True) -> AsyncIterator[Callable[[], None] | None]:
        """Wait for the gate; yields `sent`, to call as the sell leaves: the next position's
        stop may go then. Leaving the block without it (the exit refused, not sent, raised)
        opens the gate too. Not `needed` (no stop rests to lift): None, at once."""
        if not needed:
            yield None
            return
        await self._lock.acquire()
        open_ = False

        def sent() -> None:
            nonlocal open_
            if not open_:
                open_ = True
                self._lock.release()

        try:
            yield sent
        finally:
            sent()
