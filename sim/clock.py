"""Simulated time: a FakeClock for sequential code, and a VirtualTimeLoop on which concurrent
code runs in simulated time with its waits overlapping exactly as in real time."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import TypeVar

from trading.replay_clock import ReplayClock

T = TypeVar("T")


class FakeClock(ReplayClock):
    """Simulated time for sequential code: the backtest's ReplayClock (trading/replay_clock.py)
    under the test bench's name. `sleep` advances the clock at once; for concurrency use
    `run_simulated`."""


class _JumpSelector(selectors.DefaultSelector):
    """Polls real I/O without blocking; when nothing is ready, jumps virtual time forward to the
    next timer instead of waiting for it."""

    loop: VirtualTimeLoop

    def select(self, timeout: float | None = None):  # type: ignore[override]
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only real I/O can wake us
            return super().select(None)
        self.loop._virtual_now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time: `asyncio.sleep(60)` returns at once, yet concurrent
    sleepers overlap exactly as in real time (50 tasks sleeping 1 s take 1 simulated second).
    For pure simulations (paper exchange, benchmarks, the chaos soak), not for real sockets whose
    peers run on real time."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        selector = _JumpSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_now


class LoopClock:
    """A Clock that reads the running loop's time: simulated on a VirtualTimeLoop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: float = 1_700_000_000.0) -> None:
        self._loop = loop
        self._offset = start - loop.time()

    def time(self) -> float:
        return self._offset + self._loop.time()

    def monotonic(self) -> float:
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def run_simulated(main: Callable[[LoopClock], Awaitable[T]], start: float = 1_700_000_000.0) -> T:
    """Run `main(clock)` on a fresh VirtualTimeLoop and close it."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(LoopClock(loop, start)))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
