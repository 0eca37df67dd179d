"""The clock of a replay: time moves only when the replay (or a wait) moves it, so a month of
recorded candles runs as fast as the engine can take them, and runs alike every time."""

from __future__ import annotations

import asyncio


class ReplayClock:
    """Time for sequential code. `sleep` advances the clock at once instead of waiting, so a
    backoff or a pacing wait costs nothing and always the same; `advance` moves time by hand.
    Concurrent sleepers add up rather than overlap (the test bench's VirtualTimeLoop overlaps
    them)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._origin = float(start)

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._origin

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def advance_to(self, at: float) -> None:
        """Move to `at`, never back."""
        self._now = max(self._now, float(at))

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
