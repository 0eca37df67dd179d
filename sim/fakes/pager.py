"""A loopback fake of both pager services: an ntfy server and Pushover's API.

    async with FakePagers() as fake:
        ntfy = NtfyPager(fake.ntfy_url, "tk_secret", client)
        pushover = PushoverPager(fake.pushover_token, fake.pushover_user, client,
                                 base_url=fake.pushover_base)
        fake.fail_next("ntfy", 2, status=503)      # the next two publishes fail
        await fake.wait_until(lambda: fake.ntfy, what="a page")

ntfy: any POST /<topic> is a publish; its headers (Title, Priority, Tags, Authorization) and body
are recorded in `ntfy`. Pushover: POST /1/messages.json checks token and user, requires retry and
expire for priority 2 (HTTP 400 otherwise, like the real API) and answers a 30-character receipt;
POST /1/receipts/<receipt>/cancel.json cancels it (recorded in `cancelled`). Route names for
scripted trouble: "ntfy", "pushover", "cancel".

Records are stamped by `now` (real monotonic time unless a test points it at its FakeClock's
`monotonic`), so `alerting_at(t)` can tell which emergency receipts would still be making the
phone ring at simulated time t: sent, not yet past their `expire`, not cancelled.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from sim.fakes.http import LoopbackServer


@dataclass
class NtfyPublish:
    topic: str
    title: str | None
    priority: str | None
    tags: str | None
    authorization: str | None
    body: str


@dataclass
class PushoverMessage:
    form: dict[str, str]
    receipt: str | None
    at: float = field(default_factory=time.monotonic)
    cancelled_at: float | None = None

    @property
    def priority(self) -> int:
        return int(self.form.get("priority", "0"))

    def alerting_at(self, t: float) -> bool:
        """Whether Pushover would still be repeating this emergency at time t."""
        if self.priority != 2 or t < self.at or t >= self.at + int(self.form["expire"]):
            return False
        return self.cancelled_at is None or t < self.cancelled_at


class FakePagers(LoopbackServer):
    """Both pager services on one loopback port (see the module docstring)."""

    def __init__(
        self,
        *,
        topic: str = "trading-alerts",
        pushover_token: str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi",
        pushover_user: str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG",
    ) -> None:
        super().__init__()
        self.topic = topic
        self.pushover_token = pushover_token
        self.pushover_user = pushover_user
        self.ntfy: list[NtfyPublish] = []
        self.pushover: list[PushoverMessage] = []
        self.cancelled: list[str] = []
        self.requests = 0  # every request, failed ones included
        self._receipts = itertools.count(1)
        self.active_receipts: set[str] = set()
        self.now: Callable[[], float] = time.monotonic
        self.app.router.add_post("/1/messages.json", self._pushover_message)
        self.app.router.add_post("/1/receipts/{receipt}/cancel.json", self._cancel)
        self.app.router.add_post("/{topic}", self._ntfy)

    @property
    def ntfy_url(self) -> str:
        return f"{self.url}/{self.topic}"

    @property
    def pushover_base(self) -> str:
        return f"{self.url}/1"

    async def _ntfy(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await self.gate("ntfy")
        scripted = self.trouble(request, "ntfy")
        if scripted is not None:
            self.changed()
            return scripted
        body = (await request.read()).decode()
        h = request.headers
        self.ntfy.append(
            NtfyPublish(
                topic=request.match_info["topic"],
                title=h.get("Title") or h.get("X-Title"),
                priority=h.get("Priority") or h.get("X-Priority"),
                tags=h.get("Tags") or h.get("X-Tags"),
                authorization=h.get("Authorization"),
                body=body,
            )
        )
        self.changed()
        event = {"id": f"m{len(self.ntfy)}", "time": int(time.time()), "event": "message"}
        return web.json_response({**event, "topic": request.match_info["topic"], "message": body})

    async def _pushover_message(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await self.gate("pushover")
        scripted = self.trouble(request, "pushover")
        if scripted is not None:
            self.changed()
            return scripted
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        problem = self._pushover_problem(form)
        if problem:
            return web.json_response({"status": 0, "errors": [problem]}, status=400)
        receipt = None
        if form.get("priority") == "2":
            receipt = f"r{next(self._receipts):029d}"
            self.active_receipts.add(receipt)
        self.pushover.append(PushoverMessage(form, receipt, at=self.now()))
        self.changed()
        answer = {"status": 1, "request": f"req-{len(self.pushover)}"}
        if receipt:
            answer["receipt"] = receipt
        return web.json_response(answer)

    def alerting_at(self, t: float) -> list[str]:
        """Receipts of the emergencies that would make the phone ring at time t."""
        return [m.receipt for m in self.pushover if m.receipt and m.alerting_at(t)]

    def _pushover_problem(self, form: dict[str, str]) -> str | None:
        if form.get("token") != self.pushover_token:
            return "application token is invalid"
        if form.get("user") != self.pushover_user:
            return "user identifier is not a valid user, group, or subscribed user key"
        if not form.get("message"):
            return "message cannot be blank"
        if form.get("priority") == "2":
            if not form.get("retry") or int(form["retry"]) < 30:
                return "retry is invalid"
            if not form.get("expire") or int(form["expire"]) > 10800:
                return "expire must be supplied with priority=2"
        return None

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await self.gate("cancel")
        scripted = self.trouble(request, "cancel")
        if scripted is not None:
            self.changed()
            return scripted
        form = await request.post()
        if form.get("token") != self.pushover_token:
            return web.json_response({"status": 0, "errors": ["token is invalid"]}, status=400)
        receipt = request.match_info["receipt"]
        if receipt not in self.active_receipts:
            return web.json_response({"status": 0, "errors": ["receipt not found"]}, status=404)
        self.active_receipts.discard(receipt)
        self.cancelled.append(receipt)
        for message in self.pushover:
            if message.receipt == receipt:
                message.cancelled_at = self.now()
        self.changed()
        return web.json_response({"status": 1, "request": "cancel"})
