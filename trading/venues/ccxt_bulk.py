"""Whole-market ticker reads made off the event loop.

ccxt decodes a whole-market answer and parses it into tickers (a dozen safe_* calls per field,
per ticker) in one go, on the loop that awaits it: with 12,000 markets (Coinbase lists over
12,000) that held the loop 400+ ms, while /ping, /kill and every account waited. A venue's bulk
read goes instead through a twin of its ccxt client that lives on a worker thread with its own
event loop (one thread for the process): the request, the decode and ccxt's parse happen
there, and the loop receives finished tickers. Python hands the interpreter to the other thread
at least every 5 ms (sys.getswitchinterval) between statements, so the loop keeps its turn while
the worker parses; no single C call may hold the interpreter longer, so the twin decodes JSON a
piece at a time (trading/venues/json_pieces.py) instead of in one orjson call. From the
moment a read's answer arrives (ccxt's JSON hook) to the end of its parse and freeing, and not
while it waits for its pace or its answer, the process's cyclic collector is paused and threads
switch every millisecond (_LoopFirst).

The twin is the venue client's, public only: the same exchange, settings and markets (ccxt's
set_markets_from_exchange), every request paced by the venue client's own limiter on the loop,
its HTTP answer recorded in the awaiting call's Answer for the fault translation. The answer is
ccxt's own parse of the same response, read into our tickers as the plain path reads them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import gc
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from ccxt.base.errors import ExchangeClosedByUser

from trading.models import Market, Ticker
from trading.venues import json_pieces
from trading.venues.ccxt_faults import Answer, answering, current_answer
from trading.venues.ccxt_parse import to_tickers

T = TypeVar("T")


@functools.cache
def _worker() -> asyncio.AbstractEventLoop:
    """The worker thread's event loop, started on first use, for the life of the process."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="ccxt-bulk-reads", daemon=True).start()
    return loop


async def _on_worker(work: Coroutine[Any, Any, T]) -> T:
    """`work` run on the worker's loop; cancelling the caller cancels it there."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, _worker()))


# How often the interpreter offers the loop's thread its turn while a read decodes and parses
# (Python's default: every 5 ms). Each time the loop waits on its sockets it gives the
# interpreter up and waits that long to get it back, and a wake-up of the loop takes a few.
_SWITCH_INTERVAL = 0.001


class _LoopFirst:
    """What the process is told while reads decode and parse on the worker (on its thread
    only): no automatic cyclic collection, and threads switched every millisecond.

    A collection holds the interpreter in one C call for as long as it takes, and a read builds
    hundreds of thousands of containers that live until it ends (8-40 ms collections in the
    worker at 12,000 markets); they are freed by reference counting, which the pause does not
    delay: only cyclic garbage anywhere in the process waits for the read to end."""

    def __init__(self) -> None:
        self._reads = 0
        self._before = (True, _SWITCH_INTERVAL)  # the collector's state and the interval

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        if self._reads == 0:
            self._before = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(_SWITCH_INTERVAL)
        self._reads += 1
        try:
            yield
        finally:
            self._reads -= 1
            if self._reads == 0:
                collecting, interval = self._before
                sys.setswitchinterval(interval)
                if collecting:
                    gc.enable()


_loop_first = _LoopFirst()
_Caller = tuple[asyncio.AbstractEventLoop, contextvars.Context]


class _Answered:
    """One read's stretch under _loop_first: from its answer's arrival (`arrived()`, called by
    the twin's JSON hook) to the end of the `with` block, left however the read ends. Not the
    wait for the answer: a read that hangs until ccxt's timeout (10 s or more) must not keep
    the collector off and the 1 ms switching on meanwhile."""

    def __init__(self) -> None:
        self._held = contextlib.ExitStack()
        self._arrived = False

    def arrived(self) -> None:
        if not self._arrived:
            self._arrived = True
            self._held.enter_context(_loop_first.reading())

    def __enter__(self) -> _Answered:
        return self

    def __exit__(self, *exc: object) -> None:
        self._held.close()


# The read under way in this task of the worker's loop: ccxt calls the JSON hook in it.
_answered: contextvars.ContextVar[_Answered | None] = contextvars.ContextVar(
    "bulk_read_answered", default=None
)


def _loads_answer(text: str) -> Any:
    """The twin's JSON decoder: the read's stretch under _loop_first starts here."""
    answered = _answered.get()
    if answered is not None:
        answered.arrived()
    return json_pieces.loads(text)


def _settle(task: asyncio.Task, future: concurrent.futures.Future) -> None:
    """`future` ends as `task` ended."""
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


class BulkTickers:
    """One venue client's whole-market ticker reads, made by its twin on the worker thread."""

    def __init__(self, source: Any, build_twin: Callable[[], Any]) -> None:
        """`source`: the venue's ccxt client; `build_twin()`: a public-only client of the same
        exchange and settings (built on the worker thread, at the first read)."""
        self._source = source
        self._build_twin = build_twin
        self._twin: Any = None
        self._caller: _Caller | None = None  # the loop and context of the read under way
        self._used = False  # a read went to the worker: close there
        self._closed = False

    async def read(self, known: Mapping[str, Market]) -> dict[str, Ticker]:
        """Every ticker of the `known` markets (all if none), as the plain path reads them."""
        self._used = True
        caller = (asyncio.get_running_loop(), contextvars.copy_context())
        return await _on_worker(self._read(known, current_answer(), caller))

    async def _read(
        self, known: Mapping[str, Market], answer: Answer | None, caller: _Caller
    ) -> dict[str, Ticker]:
        if self._closed:  # on the worker, in order with close(): no twin left unclosed
            raise ExchangeClosedByUser(f"{self._source.id} instance was closed by the user")
        twin = self._twin or self._twin_of()
        self._caller = caller
        if self._source.markets:  # the venue's markets as they are now (reloads replace them)
            twin.set_markets_from_exchange(self._source)
        with answering(answer), _Answered() as answered:
            _answered.set(answered)  # this task's own context (run_coroutine_threadsafe's)
            raw = await twin.fetch_tickers()
            tickers = to_tickers(raw.values(), known)
            # Freeing ccxt's tickers (each with the decoded JSON it came from) at once would be
            # one C call of tens of milliseconds: one at a time, Python switches between them.
            while raw:
                raw.popitem()
        return tickers

    def _twin_of(self) -> Any:
        twin = self._twin = self._build_twin()
        twin.on_json_response = _loads_answer  # ccxt's hook for its JSON decoder
        twin.throttle = self._paced_by_source
        return twin

    async def _paced_by_source(self, cost: float | None = None) -> None:
        """The twin's pace: the venue client's, taken on the caller's loop in the caller's
        context (its request priority: trading/pacing.py)."""
        loop, context = self._caller
        throttle = self._source.throttle
        turned: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def turn() -> None:
            await throttle(cost)

        def start() -> None:
            task = loop.create_task(turn(), context=context)
            task.add_done_callback(lambda t: _settle(t, turned))

        loop.call_soon_threadsafe(start)
        await asyncio.wrap_future(turned)

    async def close(self) -> None:
        """Close the twin; reads still running or made later fail (the venue: `Closed`)."""
        self._closed = True
        if self._used:
            await _on_worker(self._close_twin())

    async def _close_twin(self) -> None:
        if self._twin is not None:
            await self._twin.close()
