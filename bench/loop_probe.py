"""How late the event loop answers: the probe bench/scale.py and bench/bigread.py run beside
the work they measure."""

from __future__ import annotations

import asyncio
import time

PROBE_PERIOD = 0.002  # seconds the probe asks to sleep each time


async def watch(lags: list[tuple[float, float]]) -> None:
    """(how late, the loop thread's CPU seconds meanwhile) of every wake-up."""
    loop = asyncio.get_running_loop()
    while True:
        due, cpu = loop.time() + PROBE_PERIOD, time.thread_time()
        await asyncio.sleep(PROBE_PERIOD)
        lags.append((loop.time() - due, time.thread_time() - cpu))
