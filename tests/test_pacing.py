"""The account's request pace (trading/pacing.py): the exchange's pace kept, the most urgent
request first, on simulated time."""

from __future__ import annotations

import asyncio

import pytest

from sim.clock import run_simulated
from trading.pacing import Pacer, Priority, at, current


async def _request(pacer: Pacer, clock, name: str, priority: Priority, log: list, cost=1.0):
    with at(priority):
        await pacer.turn(cost)
    log.append((name, clock.monotonic()))


def test_an_exit_goes_ahead_of_queued_scan_reads_at_the_same_pace():
    async def main(clock):
        pacer = Pacer(clock, per_second=1.0)  # one request a second, as ccxt paces Kraken
        log: list = []
        scan = [
            asyncio.ensure_future(_request(pacer, clock, f"scan{i}", Priority.SCAN, log))
            for i in range(5)
        ]
        await asyncio.sleep(1.5)  # 0, 1 (ccxt's bucket holds one more) and 2 went; two wait
        await _request(pacer, clock, "exit", Priority.EXIT, log)
        await asyncio.gather(*scan)
        return log

    log = run_simulated(main)
    assert [name for name, _ in log] == ["scan0", "scan1", "scan2", "exit", "scan3", "scan4"]
    times = [t for _, t in log]
    assert times == pytest.approx([0.0, 0.0, 1.0, 2.0, 3.0, 4.0])  # the pace is kept


def test_commands_go_ahead_of_the_scan_and_behind_exits():
    async def main(clock):
        pacer = Pacer(clock, per_second=1.0)
        log: list = []
        await pacer.turn(2.0)  # in debt: everyone below queues
        waiting = [
            asyncio.ensure_future(_request(pacer, clock, name, priority, log))
            for name, priority in (
                ("scan", Priority.SCAN),
                ("sync", Priority.NORMAL),
                ("kill", Priority.EXIT),
            )
        ]
        await asyncio.gather(*waiting)
        return log

    assert [name for name, _ in run_simulated(main)] == ["kill", "sync", "scan"]


def test_a_request_that_costs_nothing_does_not_wait_for_the_debt_of_others():
    """Kraken's orders: ccxt gives AddOrder a cost of 0 (its own order limit counts them)."""

    async def main(clock):
        pacer = Pacer(clock, per_second=1.0)
        log: list = []
        await pacer.turn(3.0)  # a private read from a full bucket of one: two seconds of debt
        await _request(pacer, clock, "order", Priority.EXIT, log, cost=0.0)
        await _request(pacer, clock, "read", Priority.EXIT, log)
        return log

    assert run_simulated(main) == [("order", 0.0), ("read", pytest.approx(2.0))]


def test_a_request_cancelled_while_it_waits_gives_its_turn_to_the_next():
    async def main(clock):
        pacer = Pacer(clock, per_second=1.0)
        log: list = []
        await pacer.turn(2.0)
        dropped = asyncio.ensure_future(_request(pacer, clock, "dropped", Priority.SCAN, log))
        kept = asyncio.ensure_future(_request(pacer, clock, "kept", Priority.SCAN, log))
        await asyncio.sleep(0.5)
        dropped.cancel()
        await kept
        return log, pacer.waiting()

    log, waiting = run_simulated(main)
    assert log == [("kept", pytest.approx(1.0))] and waiting == 0  # its debt paid off at 1 s


def test_the_urgency_reaches_tasks_started_inside_it_and_ends_with_it():
    async def main(clock):
        with at(Priority.EXIT):
            inside = await asyncio.gather(asyncio.ensure_future(_current()))
        return inside, current()

    async def _current():
        return current()

    assert run_simulated(main) == ([Priority.EXIT], Priority.NORMAL)
