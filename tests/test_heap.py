"""The collector leaves what start-up built alone (chatbot/heap.py)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from chatbot.heap import settle, settle_later
from chatbot.scheduling import new_scheduler


def _examined(obj: object) -> bool:
    """Whether the cyclic collector still examines `obj` (it lists only the objects it does)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture(autouse=True)
def _thawed():
    # settle() acts on the whole test process: give its objects back to the collector.
    yield
    gc.unfreeze()


def test_settle_leaves_what_is_alive_out_of_later_collections():
    built_at_start = {"markets": [1, 2, 3]}
    assert _examined(built_at_start)
    settle()
    assert not _examined(built_at_start)
    made_later = {"tickers": []}
    assert _examined(made_later)


def test_settle_collects_unreachable_cycles_before_freezing():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    settle()
    assert not any(isinstance(o, Node) for o in gc.get_objects())
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    assert not any(isinstance(o, Node) for o in gc.get_objects())  # collected, not frozen


async def test_the_scheduler_settles_once_when_told():
    scheduler = new_scheduler()
    settled_on: list[bool] = []
    built = {"markets": list(range(10))}
    settle_later(scheduler, 0.05)
    scheduler.start()
    try:
        for _ in range(200):  # bounded: 10 s
            await asyncio.sleep(0.05)
            if not _examined(built):
                settled_on.append(True)
                break
    finally:
        scheduler.shutdown(wait=False)
    assert settled_on == [True]
    assert scheduler.get_jobs() == []  # once
