"""The circuit breaker's states and the health score, on a FakeClock."""

from __future__ import annotations

import pytest

from sim.clock import FakeClock
from trading.breaker import Circuit, CircuitBreaker, HealthScore


def breaker(clock: FakeClock, **kwargs) -> CircuitBreaker:
    return CircuitBreaker(clock=clock, **{"threshold": 3, "cooldown": 10.0, **kwargs})


def trip(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        b.record_fault()


def test_stays_closed_below_the_threshold_and_opens_at_it():
    clock = FakeClock()
    b = breaker(clock)

    trip(b, 2)
    assert b.state is Circuit.CLOSED and b.admit()

    b.record_fault()
    assert b.state is Circuit.OPEN
    assert not b.admit()
    assert b.open_until == 10.0


def test_a_success_between_faults_resets_the_count():
    b = breaker(FakeClock())

    trip(b, 2)
    b.record_success()
    trip(b, 2)

    assert b.state is Circuit.CLOSED
    assert b.consecutive_faults == 2


def test_after_the_cooldown_exactly_one_probe_goes_through():
    clock = FakeClock()
    b = breaker(clock)
    trip(b, 3)

    clock.advance(9.9)
    assert not b.admit()
    clock.advance(0.1)

    assert b.state is Circuit.HALF_OPEN
    assert b.admit()  # the probe
    assert not b.admit()  # everyone else waits for its verdict


def test_a_successful_probe_closes_the_circuit():
    clock = FakeClock()
    b = breaker(clock)
    trip(b, 3)
    clock.advance(10.0)
    assert b.admit()

    b.record_success()

    assert b.state is Circuit.CLOSED
    assert b.admit() and b.admit()
    assert b.consecutive_faults == 0


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap():
    clock = FakeClock()
    b = breaker(clock, max_cooldown=30.0)
    trip(b, 3)
    reopened_for = []
    for _ in range(4):  # bounded: four failed probes
        clock.advance(b.open_until - clock.monotonic())
        assert b.admit()
        b.record_fault()
        reopened_for.append(b.open_until - clock.monotonic())

    assert reopened_for == [20.0, 30.0, 30.0, 30.0]


def test_closing_restores_the_base_cooldown():
    clock = FakeClock()
    b = breaker(clock)
    trip(b, 3)
    clock.advance(10.0)
    b.admit()
    b.record_fault()  # reopened for 20 s
    clock.advance(20.0)
    b.admit()
    b.record_success()

    trip(b, 3)

    assert b.open_until - clock.monotonic() == 10.0


def test_retry_after_opens_the_circuit_at_once_for_that_long():
    clock = FakeClock()
    b = breaker(clock)

    b.record_fault(retry_after=45.0)

    assert b.state is Circuit.OPEN
    assert b.open_until == 45.0


def test_retry_after_never_shortens_an_open_circuit():
    clock = FakeClock()
    b = breaker(clock)
    trip(b, 3)  # open for 10 s

    b.record_fault(retry_after=2.0)

    assert b.open_until == 10.0


def test_a_success_while_open_does_not_end_the_cooldown():
    clock = FakeClock()
    b = breaker(clock)
    b.record_fault(retry_after=60.0)

    b.record_success()  # an order that bypassed the circuit went through

    assert b.state is Circuit.OPEN


def test_a_probe_released_without_verdict_lets_another_through():
    clock = FakeClock()
    b = breaker(clock)
    trip(b, 3)
    clock.advance(10.0)
    assert b.admit()

    b.release_probe()

    assert b.state is Circuit.HALF_OPEN
    assert b.admit()


def test_two_breakers_share_nothing():
    clock = FakeClock()
    first, second = breaker(clock), breaker(clock)

    trip(first, 3)

    assert first.state is Circuit.OPEN
    assert second.state is Circuit.CLOSED and second.consecutive_faults == 0


def test_health_score_starts_full_falls_with_faults_and_recovers():
    score = HealthScore(alpha=0.1)
    assert score.value == 1.0

    for _ in range(5):
        score.record(False)
    after_faults = score.value
    for _ in range(30):
        score.record(True)

    assert after_faults == pytest.approx(0.9**5)
    assert score.value > 0.95


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        CircuitBreaker(clock=FakeClock(), threshold=0)
    with pytest.raises(ValueError):
        HealthScore(alpha=0.0)
