"""The one retry helper: capped exponential backoff on an injected Clock.

Only reads go through it (STYLE lesson 4): placing an order is never retried blindly, the
connector checks the exchange first. Waiting is `clock.sleep`, so tests and simulations pass
the backoff in simulated time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from trading.clock import Clock
from trading.errors import RateLimited

T = TypeVar("T")

OnRetry = Callable[[BaseException, int, float], None]
"""Called as (fault, attempt that failed (1-based), seconds about to be waited)."""


def backoff_delay(
    attempt: int, fault: BaseException | None = None, *, base: float = 0.5, cap: float = 30.0
) -> float:
    """Seconds to wait after the `attempt`-th failure: base, 2*base, 4*base, ... up to cap.

    A RateLimited that carries `retry_after` is waited exactly that long (still capped): the
    exchange told us when it will accept us again, and guessing shorter gets an IP banned.
    """
    if isinstance(fault, RateLimited) and fault.retry_after is not None:
        return min(cap, max(0.0, fault.retry_after))
    return min(cap, base * 2 ** (attempt - 1))


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    attempts: int,
    should_retry: Callable[[BaseException], bool],
    base: float = 0.5,
    cap: float = 30.0,
    on_retry: OnRetry | None = None,
) -> T:
    """Await `call()` up to `attempts` times while `should_retry(fault)` says so.

    The last fault, or the first one the predicate refuses, propagates unchanged. Only
    `Exception`s are considered: a cancellation always goes straight through.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as fault:
            if attempt >= attempts or not should_retry(fault):
                raise
            delay = backoff_delay(attempt, fault, base=base, cap=cap)
            if on_retry is not None:
                on_retry(fault, attempt, delay)
        await clock.sleep(delay)
        attempt += 1
