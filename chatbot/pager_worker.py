"""One pager's worker: what makes a page arrive although the service fails now and then.

The notifier hands pages and acknowledgements to a worker per pager, which retries failed pages
and cancels with capped backoff on its own task, so a broken pager never reaches the trading
core and never delays Telegram or another pager. A service that repeats by itself (Pushover)
stops after its expiry, so the worker has it paged again shortly before, for as long as the
emergency stays open and unacknowledged. Apart from chatbot/pagers.py because this is delivery
policy, the same for every service, while that module only speaks each service's HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field

from chatbot.pagers import Pager, brief
from chatbot.senders import Message
from chatbot.tasks import woken
from trading.clock import Clock

log = logging.getLogger("chatbot.pagers")


@dataclass(slots=True, eq=False)
class _Job:
    action: str  # "page" or "cancel"
    key: str | None
    message: Message | None
    due: float  # clock.monotonic()
    handles: list[str] = field(default_factory=list)  # what a "cancel" has still to stop
    attempts: int = 0
    dropped: bool = False  # acknowledged or cleared while its page was in flight


class PagerWorker:
    """One pager's pending work: at most one page per emergency key (a newer text replaces the
    pending one), cancels of the receipts claimed at /ack or clear time; failures retried with
    capped exponential backoff, then given up with an error log. Never raises into its caller.

    For a service that repeats by itself it remembers, per key, when the service's own repeats
    run out, so `wants_page` asks for a fresh page `refresh_lead` seconds before that."""

    def __init__(
        self,
        pager: Pager,
        clock: Clock,
        *,
        attempts: int = 6,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
        refresh_lead: float = 300.0,
    ) -> None:
        self.pager = pager
        self._clock = clock
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        # Room for a refresh to get through its retries; at most half the service's window.
        self._lead = min(refresh_lead, pager.repeats_for / 2)
        self._jobs: deque[_Job] = deque()
        self._running: _Job | None = None
        self._expires: dict[str, float] = {}  # key -> when the service stops repeating it
        self._refreshing: dict[str, float] = {}  # key -> the expiry a refresh was asked for
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.sent = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def expires_at(self, key: str) -> float | None:
        """When the service's own repeats of this emergency run out (monotonic), if it repeats."""
        return self._expires.get(key)

    def page(self, key: str, message: Message) -> None:
        job = self._pending_page(key)
        if job is not None:
            job.message = message
        else:
            self._jobs.append(_Job("page", key, message, self._clock.monotonic()))
        self._wake.set()

    def wants_page(self, key: str, *, repeat_due: bool) -> bool:
        """Whether this open, unacknowledged emergency should be paged here now. `repeat_due`:
        the notifier's own repeat interval has come round. A service that pages once wants
        every repeat; one that repeats by itself wants our repeats until a page got through,
        then one refresh shortly before that page's repeats run out (and, should the refresh
        fail for good, our repeats again until one gets through)."""
        if self._pending_page(key, in_flight=True) is not None:
            return False
        expires = self._expires.get(key)
        now = self._clock.monotonic()
        if self.pager.repeats_for <= 0 or expires is None:
            return repeat_due
        if now < expires - self._lead:
            return False
        first = self._refreshing.get(key) != expires
        self._refreshing[key] = expires
        return first or repeat_due

    def forget(self, keys: Collection[str]) -> bool:
        """Drop pages not yet delivered for these keys; True if there were any not yet started.
        A page in flight is marked, so whatever it starts ringing is cancelled on arrival."""
        for key in keys:
            self._expires.pop(key, None)
            self._refreshing.pop(key, None)
        stale = [j for j in self._jobs if j.action == "page" and j.key in keys]
        for job in stale:
            job.dropped = True
            self._jobs.remove(job)
        return any(job is not self._running for job in stale)

    def ack(self, keys: Collection[str]) -> None:
        """The user acknowledged these keys: pending pages for them are moot, and what the
        service repeats for them now (Pushover receipts) is cancelled, nothing raised later."""
        self.forget(keys)
        self._cancel_claimed(keys)

    def resolve(self, key: str, message: Message) -> None:
        """The condition cleared: stop the service's repeats of it; then, unless its page never
        went out at all, tell the phone."""
        unsent = self.forget({key})
        claimed = self._cancel_claimed({key})
        if not unsent or claimed:
            self.page(key, message)

    def _cancel_claimed(self, keys: Collection[str]) -> bool:
        handles = self.pager.claim(keys)
        if handles:
            key = next(iter(keys)) if len(keys) == 1 else None
            self._jobs.append(_Job("cancel", key, None, self._clock.monotonic(), handles))
            self._wake.set()
        return bool(handles)

    def _pending_page(self, key: str, *, in_flight: bool = False) -> _Job | None:
        # The page in flight only if asked: a newer text given to it would be lost when it ends.
        for job in self._jobs:
            if job.action == "page" and job.key == key and (in_flight or job is not self._running):
                return job
        return None

    async def run(self) -> None:
        """The worker task: do what is due, sleep until the next retry or new work."""
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("%s worker step failed", self.pager.label)
                await asyncio.sleep(1.0)
            self._wake.clear()
            if not self._jobs:
                await woken(self._wake, None)
                continue
            wait = min(j.due for j in self._jobs) - self._clock.monotonic()
            if wait > 0:
                await woken(self._wake, wait)

    async def flush(self) -> None:
        """At shutdown: try every pending job once, now."""
        now = self._clock.monotonic()
        for job in self._jobs:
            job.due = min(job.due, now)
        await self.run_due(final=True)

    async def run_due(self, *, final: bool = False) -> None:
        async with self._lock:
            for _ in range(10_000):
                now = self._clock.monotonic()
                job = next((j for j in self._jobs if j.due <= now), None)
                if job is None:
                    return
                self._running = job
                try:
                    await self._run(job, final=final)
                finally:
                    self._running = None

    async def _run(self, job: _Job, *, final: bool) -> None:
        try:
            if job.action == "page" and job.message is not None:
                await self.pager.page(job.message)
                self.sent += 1
                self._paged(job)
            else:
                while job.handles:  # one at a time, so a retry does only what is left
                    await self.pager.cancel(job.handles[0])
                    job.handles.pop(0)
        except Exception as exc:
            job.attempts += 1
            self.failures += 1
            what = f"{self.pager.label} {job.action}"
            if getattr(exc, "retryable", True) and not final and job.attempts < self._attempts:
                delay = min(self._max_backoff, self._backoff * 2 ** (job.attempts - 1))
                job.due = self._clock.monotonic() + delay
                log.warning("%s failed (%s); retry in %.0f s", what, brief(exc), delay)
                return
            log.error("%s failed for good after %d attempt(s): %s", what, job.attempts, brief(exc))
        with contextlib.suppress(ValueError):
            self._jobs.remove(job)

    def _paged(self, job: _Job) -> None:
        """An emergency page went through: note how long the service repeats it by itself, or,
        if it was acknowledged or cleared meanwhile, cancel what it just started."""
        if job.message is None or not job.message.emergency or job.key is None:
            return
        if job.dropped:
            self._cancel_claimed({job.key})
        elif self.pager.repeats_for > 0:
            self._expires[job.key] = self._clock.monotonic() + self.pager.repeats_for
