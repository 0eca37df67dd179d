"""The retry helper: how often it tries and how long it waits, in simulated time."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from trading.errors import Fatal, RateLimited, Rejected, Transient
from trading.retry import backoff_delay, retry


def transport(exc: BaseException) -> bool:
    return isinstance(exc, Transient | RateLimited)


class Flaky:
    """Raises the scripted faults in order, then returns "ok"; records when it was called."""

    def __init__(self, clock: FakeClock, *faults: BaseException) -> None:
        self.clock = clock
        self.faults = list(faults)
        self.called_at: list[float] = []

    async def __call__(self) -> str:
        self.called_at.append(self.clock.monotonic())
        if self.faults:
            raise self.faults.pop(0)
        return "ok"


async def test_retry_succeeds_after_two_transients_waiting_half_then_one_second():
    clock = FakeClock()
    call = Flaky(clock, Transient("timeout"), Transient("timeout"))

    result = await retry(call, clock=clock, attempts=3, should_retry=transport)

    assert result == "ok"
    assert call.called_at == [0.0, 0.5, 1.5]


async def test_retry_gives_up_after_attempts_with_the_last_fault():
    clock = FakeClock()
    last = Transient("third")
    call = Flaky(clock, Transient("first"), Transient("second"), last, Transient("never"))

    with pytest.raises(Transient) as caught:
        await retry(call, clock=clock, attempts=3, should_retry=transport)

    assert caught.value is last
    assert len(call.called_at) == 3
    assert clock.monotonic() == 1.5  # no wait after the last attempt


async def test_retry_waits_exactly_retry_after_when_the_exchange_sent_one():
    clock = FakeClock()
    call = Flaky(clock, RateLimited("429", retry_after=7.0))

    assert await retry(call, clock=clock, attempts=3, should_retry=transport) == "ok"

    assert call.called_at == [0.0, 7.0]


async def test_retry_after_longer_than_the_cap_is_capped():
    clock = FakeClock()
    call = Flaky(clock, RateLimited("418", retry_after=120.0))

    await retry(call, clock=clock, attempts=2, cap=30.0, should_retry=transport)

    assert call.called_at == [0.0, 30.0]


async def test_rate_limited_without_retry_after_backs_off_exponentially():
    clock = FakeClock()
    call = Flaky(clock, RateLimited("slow"), RateLimited("slow"), RateLimited("slow"))

    await retry(call, clock=clock, attempts=4, base=1.0, should_retry=transport)

    assert call.called_at == [0.0, 1.0, 3.0, 7.0]


async def test_backoff_is_capped():
    delays = [backoff_delay(n, base=10.0, cap=15.0) for n in (1, 2, 3, 4)]

    assert delays == [10.0, 15.0, 15.0, 15.0]


@pytest.mark.parametrize("fault", [Rejected("insufficient funds"), Fatal("auth"), KeyError("bug")])
async def test_faults_the_predicate_refuses_propagate_at_once(fault):
    clock = FakeClock()
    call = Flaky(clock, fault)

    with pytest.raises(type(fault)) as caught:
        await retry(call, clock=clock, attempts=5, should_retry=transport)

    assert caught.value is fault
    assert call.called_at == [0.0]
    assert clock.monotonic() == 0.0


async def test_on_retry_hears_each_fault_attempt_and_wait():
    clock = FakeClock()
    first, second = Transient("a"), RateLimited("b", retry_after=2.0)
    heard: list[tuple[BaseException, int, float]] = []

    await retry(
        Flaky(clock, first, second),
        clock=clock,
        attempts=3,
        should_retry=transport,
        on_retry=lambda fault, n, delay: heard.append((fault, n, delay)),
    )

    assert heard == [(first, 1, 0.5), (second, 2, 2.0)]


async def test_zero_attempts_is_a_programming_error():
    clock = FakeClock()

    with pytest.raises(ValueError, match="attempts"):
        await retry(Flaky(clock), clock=clock, attempts=0, should_retry=transport)
