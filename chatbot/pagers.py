"""Pagers: what wakes a phone in silent mode, which Telegram alone cannot.

Two services, one interface: `page(message)` sends now (urgent for an emergency, ordinary for a
"cleared" notice) and raises on failure; `ack(key)` stops whatever the service repeats on its own.
The notifier retries failed pages with backoff in a worker per pager, so a broken pager never
reaches the trading core and never delays Telegram or another pager.

Nothing here logs a URL or a credential: an ntfy topic URL is effectively a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
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
    """A service that can wake a phone. `repeats_itself`: it keeps alerting until acknowledged
    (Pushover's emergency priority), so the notifier need not page it again on every repeat."""

    name: str
    repeats_itself: bool

    async def page(self, message: Message) -> None: ...

    async def ack(self, key: str | None = None) -> None: ...


class PagerError(Exception):
    """The service answered with an error. `retryable`: worth trying again later."""

    def __init__(self, service: str, status: int, detail: str = "") -> None:
        super().__init__(f"{service} answered HTTP {status}{': ' + detail if detail else ''}")
        self.status = status
        self.retryable = status == 429 or status >= 500


def _reveal(value: Secret | str | None) -> str | None:
    return value.get() if isinstance(value, Secret) else value


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
    default priority and a check mark for "cleared". ntfy does not repeat by itself."""

    name = "ntfy"
    repeats_itself = False

    def __init__(self, url: str, token: Secret | str | None, client: httpx.AsyncClient) -> None:
        self._url = url
        self._token = token
        self._client = client

    def __repr__(self) -> str:
        return "NtfyPager(url='***')"

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
        response = await self._client.post(self._url, content=body.encode(), headers=headers)
        if response.status_code >= 300:
            raise PagerError(self.name, response.status_code)

    async def ack(self, key: str | None = None) -> None:
        return None  # nothing to cancel: ntfy sends once


class PushoverPager:
    """Pushover emergency priority (2): the phone alerts every `retry` seconds until someone
    acknowledges or `expire` passes. Receipts are kept per key so /ack (or a cleared
    condition) cancels the repeats through the receipts cancel endpoint."""

    name = "pushover"
    repeats_itself = True

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
        self.receipts: dict[str, list[str]] = {}  # key -> receipts still alerting

    def __repr__(self) -> str:
        return f"PushoverPager(base_url={self._base!r}, receipts={len(self.receipts)})"

    async def page(self, message: Message) -> None:
        if not message.emergency and message.key:
            # The condition cleared: stop the siren first. A failure raises, so the worker
            # retries both, rather than leave the phone ringing until `expire`.
            await self.ack(message.key)
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
            del kept[:-10]  # older ones have expired at Pushover long ago

    async def ack(self, key: str | None = None) -> None:
        keys = list(self.receipts) if key is None else [key]
        for k in keys:
            for receipt in list(self.receipts.get(k, ())):
                await self._cancel(receipt)
                self.receipts[k].remove(receipt)
            self.receipts.pop(k, None)

    async def _cancel(self, receipt: str) -> None:
        try:
            await self._post(f"/receipts/{receipt}/cancel.json", {"token": _reveal(self._token)})
        except PagerError as exc:
            if exc.retryable:
                raise
            # 4xx: the receipt expired or was acknowledged in the app; nothing left to stop.

    async def _post(self, path: str, data: dict[str, str | None]) -> dict:
        response = await self._client.post(self._base + path, data=data)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 300 or payload.get("status") != 1:
            errors = payload.get("errors") if isinstance(payload, dict) else None
            detail = "; ".join(str(x) for x in errors) if isinstance(errors, list) else ""
            raise PagerError(self.name, response.status_code, detail)
        return payload


def pagers_from_settings(settings: NotifySettings, client: httpx.AsyncClient) -> list[Pager]:
    """Every pager the settings configure (none, one or both)."""
    pagers: list[Pager] = []
    if settings.ntfy_url:
        pagers.append(NtfyPager(settings.ntfy_url.get(), settings.ntfy_token, client))
    if settings.pushover_token is not None and settings.pushover_user is not None:
        pagers.append(PushoverPager(settings.pushover_token, settings.pushover_user, client))
    return pagers


def describe(pagers: Sequence[Pager]) -> str:
    return ", ".join(p.name for p in pagers) or "none"


@dataclass(slots=True, eq=False)
class _Job:
    action: str  # "page" or "ack"
    key: str | None
    message: Message | None
    due: float  # clock.monotonic()
    attempts: int = 0


class PagerWorker:
    """One pager's pending work: at most one page per emergency key (a newer text replaces the
    pending one) and at most one "ack everything"; failures retried with capped exponential
    backoff, then given up with an error log. Never raises into its caller."""

    def __init__(
        self,
        pager: Pager,
        clock: Clock,
        *,
        attempts: int = 6,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.pager = pager
        self._clock = clock
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._jobs: deque[_Job] = deque()
        self._paged: set[str] = set()  # keys whose emergency page went through
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.sent = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def page(self, key: str, message: Message) -> None:
        for job in self._jobs:
            if job.action == "page" and job.key == key:
                job.message = message
                break
        else:
            self._jobs.append(_Job("page", key, message, self._clock.monotonic()))
        self._wake.set()

    def wants_repeat(self, key: str) -> bool:
        """Whether a repeat of this emergency should be paged here: always for a service that
        pages once, and for a self-repeating one until a page of it went through."""
        return not self.pager.repeats_itself or key not in self._paged

    def forget(self, keys: set[str] | frozenset[str]) -> bool:
        """Drop pages not yet delivered for these keys; True if there were any."""
        self._paged.difference_update(keys)
        stale = [j for j in self._jobs if j.action == "page" and j.key in keys]
        for job in stale:
            self._jobs.remove(job)
        return bool(stale)

    def ack(self, keys: set[str] | frozenset[str]) -> None:
        """The user acknowledged: pending pages for `keys` are moot; stop the service's own
        repeats (Pushover receipts)."""
        self.forget(keys)
        if not any(j.action == "ack" for j in self._jobs):
            self._jobs.append(_Job("ack", None, None, self._clock.monotonic()))
        self._wake.set()

    def resolve(self, key: str, message: Message) -> None:
        """The condition cleared. If its page never went out, say nothing; otherwise tell the
        phone (and a self-repeating service always, so it stops alerting)."""
        unsent = self.forget({key})
        if not unsent or self.pager.repeats_itself:
            self.page(key, message)

    async def run(self) -> None:
        """The worker task: do what is due, sleep until the next retry or new work."""
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("%s worker step failed", self.pager.name)
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
                await self._run(job, final=final)

    async def _run(self, job: _Job, *, final: bool) -> None:
        try:
            if job.action == "page" and job.message is not None:
                await self.pager.page(job.message)
                self.sent += 1
                if job.message.emergency and job.key is not None:
                    self._paged.add(job.key)
            else:
                await self.pager.ack(job.key)
        except Exception as exc:
            job.attempts += 1
            self.failures += 1
            what = f"{self.pager.name} {job.action}"
            if getattr(exc, "retryable", True) and not final and job.attempts < self._attempts:
                delay = min(self._max_backoff, self._backoff * 2 ** (job.attempts - 1))
                job.due = self._clock.monotonic() + delay
                log.warning("%s failed (%s); retry in %.0f s", what, brief(exc), delay)
                return
            log.error("%s failed for good after %d attempt(s): %s", what, job.attempts, brief(exc))
        with contextlib.suppress(ValueError):
            self._jobs.remove(job)


async def _wait(event: asyncio.Event, seconds: float | None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def brief(exc: BaseException) -> str:
    """An exception for a log line: its class and a bounded message (never a request URL:
    httpx errors carrying one are reduced to their class)."""
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
