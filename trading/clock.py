"""Time reaches the trading core only through a Clock, so tests and the chaos soak can drive
thousands of cycles without sleeping (their simulated clocks are in sim/clock.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock epoch seconds (for timestamps and candles)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards (for durations)."""

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Real time sped up by `speed` from its creation: the paper exchange's demo clock, so a
    newcomer sees candles form and trades close within minutes. It reads `start` at creation
    (default: the base clock's time), so a restarted demo continues its paper time."""

    def __init__(
        self, speed: float, base: Clock | None = None, *, start: float | None = None
    ) -> None:
        self._base = base or RealClock()
        self._speed = speed
        self._t0 = self._base.time() if start is None else start
        self._m0 = self._base.monotonic()

    def time(self) -> float:
        return self._t0 + (self._base.monotonic() - self._m0) * self._speed

    def monotonic(self) -> float:
        return (self._base.monotonic() - self._m0) * self._speed

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds / self._speed)
