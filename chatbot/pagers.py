"""Pagers: what wakes a phone in silent mode, which Telegram alone cannot.

Two services, one interface: `page(message)` sends now (urgent for an emergency, ordinary for a
"cleared" notice) and raises on failure; `claim(keys)` then `cancel(handle)` stop what the service
repeats on its own (Pushover receipts), exactly the ones claimed at /ack or clear time. The
notifier retries failed pages and cancels with backoff in a worker per pager, so a broken pager
never reaches the trading core and never delays Telegram or another pager. A service that
repeats by itself stops after its expiry, so the worker has it paged again shortly before, for
as long as the emergency stays open and unacknowledged.

Nothing here logs a URL or a credential: an ntfy topic URL is effectively a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from chatbot.config import NotifySettings, Secret
from chatbot.senders import Message, html_to_text
from trading.clock import Clock

log = logging.getLogger("chatbot.pagers")

PUSHOVER_API = "https://api.pushover.net/1"
PUSHOVER_MESSAGE_LIMIT = 1024
PUSHOVER_TITLE_LIMIT = 250
TITLE_LIMIT = 120


class Pager(Protocol):
    """A service that can wake a phone.

    `repeats_for`: seconds it keeps alerting by itself after an emergency page, until cancelled
    (Pushover's emergency priority); 0 for a service that alerts once (ntfy). `claim(keys)` takes
    the handles of what it is repeating for those conditions (receipts) at once, and
    `cancel(handle)` stops one: the two steps let an acknowledgement that fails and is retried
    later cancel exactly what was ringing when it was given, never a newer emergency."""

    name: str
    label: str  # for log lines: the name and, for ntfy, the host (never a URL or a secret)
    repeats_for: float

    async def page(self, message: Message) -> None: ...

    def claim(self, keys: Collection[str]) -> list[str]: ...

    async def cancel(self, handle: str) -> None: ...


class PagerError(Exception):
    """The service failed or answered with an error. `retryable`: worth trying again later.
    Its text never holds a URL or a credential (status 0: the service was not reached)."""

    def __init__(
        self, service: str, status: int, detail: str = "", *, retryable: bool | None = None
    ) -> None:
        what = f"answered HTTP {status}" if status else "unreachable"
        super().__init__(f"{service} {what}{': ' + detail if detail else ''}")
        self.status = status
        self.retryable = (status == 429 or status >= 500) if retryable is None else retryable


def _reveal(value: Secret | str | None) -> str | None:
    return value.get() if isinstance(value, Secret) else value


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "?"


async def _post(
    client: httpx.AsyncClient, service: str, url: str, **kwargs: object
) -> httpx.Response:
    """POST, with transport errors reduced to a PagerError naming the service only: an httpx
    error carries the request (and so the URL), and a traceback would print its context."""
    try:
        return await client.post(url, **kwargs)  # type: ignore[arg-type]
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        retryable = isinstance(exc, httpx.TransportError) and not isinstance(
            exc, httpx.UnsupportedProtocol
        )
        raise PagerError(service, 0, type(exc).__name__, retryable=retryable) from None


def title_and_body(message: Message) -> tuple[str, str]:
    """First line of the text as the title, the rest as the body (plain text)."""
    lines = [line.strip() for line in html_to_text(message.text).strip().splitlines()]
    lines = [line for line in lines if line] or ["Trading bot"]
    return lines[0], "\n".join(lines[1:]) or lines[0]


def header_safe(text: str, limit: int = TITLE_LIMIT) -> str:
    """HTTP header values are latin-1: keep the ASCII part (emoji go, words stay)."""
    cleaned = " ".join(text.encode("ascii", "ignore").decode().split())
    return cleaned[:limit] or "Trading bot"


class NtfyPager:
    """Publishes to an ntfy topic URL: `Priority: urgent` (5) and a siren tag for emergencies,
    default priority and a check mark for "cleared". ntfy does not repeat by itself.

    The topic URL is the topic's password: it stays a Secret here, and only its host ever
    reaches a log line, a repr or an error message."""

    name = "ntfy"
    repeats_for = 0.0

    def __init__(
        self, url: Secret | str, token: Secret | str | None, client: httpx.AsyncClient
    ) -> None:
        self._url = url if isinstance(url, Secret) else Secret(url)
        self._token = token
        self._client = client
        self.host = _host(self._url.get())
        self.label = f"ntfy ({self.host})"

    def __repr__(self) -> str:
        return f"NtfyPager(host={self.host!r})"

    async def page(self, message: Message) -> None:
        title, body = title_and_body(message)
        headers = {
            "Title": header_safe(title),
            "Priority": "urgent" if message.emergency else "default",
            "Tags": "rotating_light" if message.emergency else "white_check_mark",
        }
        token = _reveal(self._token)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = self._url.get()
        response = await _post(
            self._client, self.label, url, content=body.encode(), headers=headers
        )
        if response.status_code >= 300:
            raise PagerError(self.label, response.status_code)

    def claim(self, keys: Collection[str]) -> list[str]:
        return []  # nothing to cancel: ntfy sends once

    async def cancel(self, handle: str) -> None:
        return None


class PushoverPager:
    """Pushover emergency priority (2): the phone alerts every `retry` seconds until someone
    acknowledges or `expire` passes. Receipts are kept per key, so /ack (or a cleared
    condition) cancels exactly that condition's repeats through the receipts cancel endpoint;
    the notifier pages again before `expire` runs out while the emergency stays open."""

    name = label = "pushover"

    def __init__(
        self,
        token: Secret | str,
        user: Secret | str,
        client: httpx.AsyncClient,
        *,
        base_url: str = PUSHOVER_API,
        retry: int = 60,
        expire: int = 3600,
    ) -> None:
        self._token = token
        self._user = user
        self._client = client
        self._base = base_url.rstrip("/")
        self._retry = max(30, retry)  # Pushover's floor
        self._expire = min(10_800, max(self._retry, expire))  # and ceiling
        self.repeats_for = float(self._expire)
        self.receipts: dict[str, list[str]] = {}  # key -> receipts not yet claimed

    def __repr__(self) -> str:
        return f"PushoverPager(base_url={self._base!r}, receipts={len(self.receipts)})"

    async def page(self, message: Message) -> None:
        title, body = title_and_body(message)
        data = {
            "token": _reveal(self._token),
            "user": _reveal(self._user),
            "title": title[:PUSHOVER_TITLE_LIMIT],
            "message": body[:PUSHOVER_MESSAGE_LIMIT],
            "priority": "2" if message.emergency else "0",
        }
        if message.emergency:
            data.update(retry=str(self._retry), expire=str(self._expire))
        payload = await self._post("/messages.json", data)
        receipt = payload.get("receipt")
        if message.emergency and isinstance(receipt, str) and receipt:
            kept = self.receipts.setdefault(message.key or "", [])
            kept.append(receipt)
            # An open emergency is paged again about once per `expire`, so only the newest
            # one or two can still be alerting: older ones expired at Pushover long ago.
            del kept[:-10]

    def claim(self, keys: Collection[str]) -> list[str]:
        return [r for k in keys for r in self.receipts.pop(k, ())]

    async def cancel(self, handle: str) -> None:
        try:
            await self._post(f"/receipts/{handle}/cancel.json", {"token": _reveal(self._token)})
        except PagerError as exc:
            if exc.retryable:
                raise
            # 4xx: the receipt expired or was acknowledged in the app; nothing left to stop.

    async def _post(self, path: str, data: dict[str, str | None]) -> dict:
        response = await _post(self._client, self.name, self._base + path, data=data)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.status_code >= 300 or payload.get("status") != 1:
            errors = payload.get("errors")
            detail = "; ".join(str(x) for x in errors) if isinstance(errors, list) else ""
            raise PagerError(self.name, response.status_code, detail)
        return payload


def pagers_from_settings(settings: NotifySettings, client: httpx.AsyncClient) -> list[Pager]:
    """Every pager the settings configure (none, one or both)."""
    pagers: list[Pager] = []
    if settings.ntfy_url:
        pagers.append(NtfyPager(settings.ntfy_url, settings.ntfy_token, client))
    if settings.pushover_token is not None and settings.pushover_user is not None:
        pagers.append(PushoverPager(settings.pushover_token, settings.pushover_user, client))
    return pagers


def describe(pagers: Sequence[Pager]) -> str:
    return ", ".join(p.label for p in pagers) or "none"


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
                await _wait(self._wake, None)
                continue
            wait = min(j.due for j in self._jobs) - self._clock.monotonic()
            if wait > 0:
                await _wait(self._wake, wait)

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


async def _wait(event: asyncio.Event, seconds: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def brief(exc: BaseException) -> str:
    """An exception for a log line: its class and a bounded message (never a request URL:
    httpx errors carrying one are reduced to their class)."""
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        return type(exc).__name__
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
