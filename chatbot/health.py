"""The outside view of a running bot: `GET /healthz` for the watchdog, `GET /metrics` for
Prometheus, both served by aiohttp on HEALTH_PORT (falling back to PORT).

/healthz answers 200 while every trader whose cycles the process runs has, within
3 x SCAN_INTERVAL_SECONDS, both completed a cycle and read its account with a successful sync
(before the first of each, counted from the bot's start), and 503 otherwise, with the same JSON
both ways. A failing sync skips the rest of a cycle, which still completes: so a trader whose
syncs keep failing (and which therefore checks no stop-loss) turns stale too. Which traders
count: every one but an aborted trader (/abort ends its cycles on purpose, and the process with
them). A paused, stopped, killed or halted trader places no entries, but its cycle still
syncs, prices its positions, cancels strays and keeps a kill flattening; a cycle that stopped
completing in any mode means the loop, the scheduler or an exchange call is stuck, which is
exactly what the watchdog is for.

Who may read what: the port is often public (the watchdog polls it through the host's domain),
so /healthz shows only what a watchdog needs (status, uptime, the stale accounts and, per
account, its mode, the ages of its last cycle and last successful sync and its circuit state),
never equity, balances, positions or order counts. /metrics carries those, so it answers only a
request with `Authorization: Bearer <METRICS_TOKEN>`; without a configured token it is off (404).

Nothing here awaits an exchange or a lock: both endpoints read what the traders, their
connectors and the notifier hold in memory, so they answer while the trading core is busy.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from chatbot.metrics import CONTENT_TYPE, new_registry, render
from trading.clock import Clock

if TYPE_CHECKING:
    from chatbot.notifier import Notifier
    from trading.desk import Desk
    from trading.engine import Trader

log = logging.getLogger("chatbot.health")

STALE_CYCLES = 3  # a trader is stale after this many scan intervals without a finished cycle
REFUSAL_LOG_INTERVAL = 60.0  # seconds between two log lines about refused /metrics requests
METRICS_OFF = "/metrics is off: set METRICS_TOKEN and scrape with Authorization: Bearer <token>\n"


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 3)


def counts_for_health(trader: Trader) -> bool:
    """Whether this trader's cycles are expected to keep running (all but an aborted one)."""
    return not trader.status().aborted


def trader_health(trader: Trader, *, now: float, since: float, stale_after: float) -> dict:
    """One trader's heartbeat as JSON-ready data; `fresh` says whether it passes. Public:
    nothing about money or holdings belongs here (see the module docstring)."""
    s = trader.status()
    last = s.last_cycle_at
    age = now - (last if last is not None else since)
    # A cycle completes even when its sync failed and the rest was skipped: only a successful
    # sync shows the trader really sees its account.
    sync_age = now - (s.last_sync_at if s.last_sync_at is not None else since)
    return {
        "account": s.account,
        "mode": str(s.mode),
        "counted": not s.aborted,
        "fresh": age <= stale_after and sync_age <= stale_after,
        "last_cycle_age": _age(now, last),  # None before the first cycle
        "last_sync_age": _age(now, s.last_sync_at),  # None before the first sync
        "circuit": s.health.circuit,
    }


def health_report(desk: Desk, clock: Clock, scan_interval: float) -> tuple[bool, dict[str, Any]]:
    """(healthy, the JSON body) as /healthz serves it."""
    now = clock.time()
    stale_after = STALE_CYCLES * scan_interval
    traders = [
        trader_health(t, now=now, since=desk.started_at, stale_after=stale_after)
        for t in desk.traders
    ]
    stale = [t["account"] for t in traders if t["counted"] and not t["fresh"]]
    body: dict[str, Any] = {
        "status": "stale" if stale else "ok",
        "stale": stale,
        "uptime": _rounded(desk.uptime()),
        "stale_after": stale_after,
        "traders": traders,
    }
    return not stale, body


class HealthServer:
    """/healthz (public) and /metrics (bearer token) on one port. A port that cannot be bound is
    logged and skipped: the health server must never be the reason a trading bot does not run."""

    def __init__(
        self,
        desk: Desk,
        *,
        notifier: Notifier | None,
        clock: Clock,
        port: int,
        scan_interval: float,
        host: str = "0.0.0.0",
        metrics_token: str | None = None,
    ) -> None:
        self.desk = desk
        self.notifier = notifier
        self.clock = clock
        self.port = port
        self.host = host
        self.scan_interval = scan_interval
        self.registry = new_registry(desk, notifier, clock)
        # An empty token would let "Authorization: Bearer " in: treat it as no token at all.
        self._token = metrics_token.encode() if metrics_token else None
        self.metrics_refused = 0
        self._refusal_logged_at: float | None = None
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            log.warning(
                "health server not started: cannot listen on %s:%s (%s); trading goes on",
                self.host,
                self.port,
                exc.strerror or exc,
            )
            await runner.cleanup()
            return
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info(
            "health server on port %d: /healthz, /metrics %s",
            self.port,
            "(bearer token)" if self._token else "off (no METRICS_TOKEN)",
        )

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            healthy, body = health_report(self.desk, self.clock, self.scan_interval)
        except Exception:  # a bug here must read as "unhealthy", never as a crash
            log.exception("/healthz failed")
            return web.json_response({"status": "error"}, status=500)
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._token is None:
            return web.Response(status=404, text=METRICS_OFF)
        if not self._authorized(request):
            self._note_refusal(request)
            return web.Response(
                status=401,
                text="/metrics needs Authorization: Bearer <METRICS_TOKEN>\n",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        try:
            body = render(self.registry)
        except Exception:
            log.exception("/metrics failed")
            return web.Response(status=500, text="metrics failed; see the bot's log")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or self._token is None:
            return False
        # Bytes, not str: compare_digest refuses non-ASCII text, and a header is the
        # caller's choice. Constant time, so the token cannot be guessed byte by byte.
        return hmac.compare_digest(given.strip().encode(errors="surrogateescape"), self._token)

    def _note_refusal(self, request: web.Request) -> None:
        # Once a minute at most: a public port gets scanned, and the log must stay readable.
        # Never the header itself: a near-miss token is still a secret.
        self.metrics_refused += 1
        now = self.clock.time()
        last = self._refusal_logged_at
        if last is None or now - last >= REFUSAL_LOG_INTERVAL:
            self._refusal_logged_at = now
            log.warning(
                "/metrics refused a request without the right bearer token from %s "
                "(%d refused so far)",
                request.remote,
                self.metrics_refused,
            )
