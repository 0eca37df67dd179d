"""The watchdog's poller: the bot's /healthz seen from outside, and the one alarm it raises.

When the bot has not answered 200 for `stale_seconds` (down, stuck, unreachable, or a trader's
cycle stalled), it raises one emergency (KEY), whose text follows what the polls see, and the
next healthy answer clears it. Apart from the process (chatbot/watchdog.py) because it needs
nothing but an HTTP client, a clock and `notify`: tests drive it on a FakeClock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from trading.clock import Clock
from trading.events import Emergency, EmergencyCleared, Notify

log = logging.getLogger("chatbot.watchdog")

ACCOUNT = "watchdog"
KEY = "watchdog:bot-unhealthy"


def _where(url: str) -> str:
    """The URL without credentials, query or path, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Watchdog:
    """Polls a /healthz URL and turns a long enough silence into one emergency, and the next
    healthy answer into its all-clear. `run()` sleeps on the injected clock, so a FakeClock
    drives it in tests; `tick` (e.g. the notifier's `drain`) runs after every poll."""

    def __init__(
        self,
        url: str,
        *,
        notify: Notify,
        clock: Clock,
        http: httpx.AsyncClient,
        stale_seconds: float,
        interval_seconds: float,
        timeout_seconds: float = 10.0,
        tick: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.url = url
        self.where = _where(url)
        self._notify = notify
        self.clock = clock
        self._http = http
        self.stale_seconds = stale_seconds
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self._tick = tick
        self.last_ok = clock.monotonic()  # the bot gets the grace period from our start
        self.alarmed = False
        self.problem: str | None = None  # why the last poll was not healthy
        self.polls = 0
        self.failures = 0
        self.alarms = 0

    async def check(self) -> str | None:
        """One poll: None when the bot answers 200, else what was wrong (never raises)."""
        try:
            response = await self._http.get(self.url, timeout=self.timeout_seconds)
        except httpx.TimeoutException:
            return f"no answer within {self.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__})"
        if response.status_code == 200:
            return None
        return f"HTTP {response.status_code}{_stale_detail(response)}"

    async def step(self) -> None:
        """Poll once and raise, update or clear the alarm."""
        self.polls += 1
        problem = await self.check()
        now = self.clock.monotonic()
        if problem is None:
            self._healthy(now)
            return
        self.failures += 1
        changed = problem != self.problem
        self.problem = problem
        silent_for = now - self.last_ok
        if changed:
            log.info("poll of %s: %s (%.0f s since healthy)", self.where, problem, silent_for)
        if self.alarmed:
            if changed:  # what the repeats say follows the bot's state (coalesced, same key)
                self._raise(silent_for, problem)
            return
        if silent_for >= self.stale_seconds:
            self.alarmed = True
            self.alarms += 1
            log.error("the bot at %s has not been healthy for %.0f s", self.where, silent_for)
            self._raise(silent_for, problem)

    def _raise(self, silent_for: float, problem: str) -> None:
        self._tell(
            Emergency,
            f"The bot at {self.where} has not answered healthy for {_ago(silent_for)}: "
            f"{problem}. It may be down or stuck: check it, /kill from its chat if it answers, "
            "or flatten on the exchange.",
        )

    def _healthy(self, now: float) -> None:
        down_for = now - self.last_ok
        self.last_ok, self.problem = now, None
        if not self.alarmed:
            return
        self.alarmed = False
        log.warning("the bot at %s answers healthy again", self.where)
        self._tell(
            EmergencyCleared,
            f"The bot at {self.where} answers healthy again "
            f"(unhealthy for about {_ago(down_for)}).",
        )

    def _tell(self, kind: type[Emergency | EmergencyCleared], message: str) -> None:
        self._notify(kind(account=ACCOUNT, at=self.clock.time(), key=KEY, message=message))

    async def run(self, *, polls: int | None = None) -> None:
        """Poll, then wait out the interval: forever, or `polls` times."""
        done = 0
        while polls is None or done < polls:
            started = self.clock.monotonic()
            await self.step()
            if self._tick is not None:
                await self._tick()
            done += 1
            elapsed = self.clock.monotonic() - started
            await self.clock.sleep(max(0.0, self.interval_seconds - elapsed))

    def status(self) -> str:
        """One line for /ping in the watchdog's own chat."""
        since = _ago(self.clock.monotonic() - self.last_ok)
        if self.problem is None:
            return f"The bot at {self.where} is healthy (last poll OK, {self.polls} polls)."
        alarm = " Alarm raised." if self.alarmed else ""
        return f"The bot at {self.where}: {self.problem}; healthy {since} ago.{alarm}"


def _stale_detail(response: httpx.Response) -> str:
    try:
        stale = response.json().get("stale")
    except (ValueError, AttributeError):
        return ""
    if isinstance(stale, list) and stale:
        return f" (no recent cycle: {', '.join(str(s) for s in stale[:5])})"
    return ""
