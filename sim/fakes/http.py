"""A small base for loopback fake HTTP services (aiohttp.web on 127.0.0.1, a free port).

It gives every fake the same three abilities, so tests read alike:

- lifecycle: `async with FakeX() as fake:` binds 127.0.0.1:<free port>; `fake.url` is the root;
- scripted trouble per route name: `fail_next(route, times, status=..., json=...)` answers with
  an error, `drop_next(route)` closes the connection without an answer (the client sees a
  network error), `stall(route)` holds every request until `release(route)`
  (`parked[route]` counts the requests held);
- waiting without sleeping: `await fake.wait_until(predicate, within)` re-checks the predicate
  each time the fake records something and fails the test with `what` after `within` real
  seconds (a bound for a broken test, never a way to pass time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


async def serve(handler) -> tuple[web.AppRunner, str]:
    """An aiohttp server on 127.0.0.1 (a free port) sending every request to `handler`; its
    runner (to clean up) and its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@dataclass
class Trouble:
    """One scripted misbehaviour of a route."""

    status: int = 500
    json: dict[str, Any] | None = None
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0  # requests to let through first


class LoopbackServer:
    """Base of the fakes: subclasses add routes to `self.app` and call `self.changed()` when
    they record something tests may wait for."""

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._trouble: dict[str, deque[Trouble]] = defaultdict(deque)
        self._gates: dict[str, asyncio.Event] = {}
        self.parked: Counter[str] = Counter()  # requests held by stall(), per route
        self._changed = asyncio.Event()
        self.closed = False

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the fake server is not started")
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self.closed = True
        for gate in self._gates.values():
            gate.set()  # stalled handlers end, so cleanup does not wait for them
        self.changed()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- scripted trouble -------------------------------------------------------------

    def fail_next(
        self,
        route: str,
        times: int = 1,
        *,
        status: int = 500,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` requests to `route` (after letting `after` through) answer
        `status` with `json` as the body."""
        for i in range(times):
            skip = after if i == 0 else 0
            self._trouble[route].append(Trouble(status, json, False, dict(headers or {}), skip))

    def drop_next(self, route: str, times: int = 1) -> None:
        """The next `times` requests to `route` get the connection closed, no answer."""
        for _ in range(times):
            self._trouble[route].append(Trouble(drop=True))

    def stall(self, route: str) -> None:
        """Hold every request to `route` (before it is recorded) until `release(route)`."""
        self._gates[route] = asyncio.Event()

    def release(self, route: str) -> None:
        gate = self._gates.pop(route, None)
        if gate is not None:
            gate.set()

    def stalled(self, route: str) -> bool:
        return route in self._gates

    async def gate(self, route: str) -> None:
        gate = self._gates.get(route)
        if gate is None:
            return
        self.parked[route] += 1
        self.changed()
        try:
            await gate.wait()
        finally:
            self.parked[route] -= 1

    def trouble(self, request: web.Request, route: str) -> web.Response | None:
        """The scripted answer for this request, if one is queued for `route`."""
        queue = self._trouble.get(route)
        if not queue:
            return None
        if queue[0].after > 0:
            queue[0].after -= 1
            return None
        t = queue.popleft()
        if t.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=200)  # never reaches the client: the socket is closed
        return web.json_response(t.json or {}, status=t.status, headers=t.headers)

    # ---- waiting ----------------------------------------------------------------------

    def changed(self) -> None:
        """Wake everything waiting in `wait_until` to re-check its predicate."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(
        self, predicate: Callable[[], T], within: float = 5.0, what: str = "condition"
    ) -> T:
        """Return the predicate's first truthy value; fail the test after `within` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {within:g} s waiting for {what}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
