"""Pagers: what wakes a phone in silent mode, which Telegram alone cannot.

Two services, one interface: `page(message)` sends now (urgent for an emergency, ordinary for a
"cleared" notice) and raises on failure; `claim(keys)` then `cancel(handle)` stop what the service
repeats on its own (Pushover receipts), exactly the ones claimed at /ack or clear time. This
module only speaks the services' HTTP; retrying, coalescing and refreshing a page before the
service's own repeats expire is the worker's (chatbot/pager_worker.py), one per pager.

Nothing here logs a URL or a credential: an ntfy topic URL is effectively a password.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import httpx

from chatbot.config import NotifySettings, Secret
from chatbot.senders import Message, html_to_text

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


def brief(exc: BaseException) -> str:
    """An exception for a log line: its class and a bounded message (never a request URL:
    httpx errors carrying one are reduced to their class)."""
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        return type(exc).__name__
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
