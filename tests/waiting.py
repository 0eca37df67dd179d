"""Waiting in a test for something real time brings (a loopback server's answer, a process):
bounded, checked every 10 ms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(predicate: Callable[[], object], within: float, what: str) -> None:
    """Wait for the predicate, checking every 10 ms; fail after `within` seconds."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {within:g} s: {what}")
