"""The outside view of a running bot: `GET /healthz` for the watchdog, `GET /metrics` for
Prometheus, both served by aiohttp on HEALTH_PORT (falling back to PORT).

/healthz answers 200 while every trader whose cycles the process runs has completed a cycle
within 3 x SCAN_INTERVAL_SECONDS (before its first cycle, counted from the bot's start), and 503
otherwise, with the same JSON both ways. Which traders count: every one but an aborted trader
(/abort ends its cycles on purpose, and the process with them). A paused, stopped, killed or
halted trader places no entries, but its cycle still syncs, prices its positions, cancels
strays and keeps a kill flattening; a cycle that stopped completing in any mode means the loop,
the scheduler or an exchange call is stuck, which is exactly what the watchdog is for.

Nothing here awaits an exchange or a lock: both endpoints read what the traders, their
connectors and the notifier hold in memory, so they answer while the trading core is busy.
"""

from __future__ import annotations

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


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def counts_for_health(trader: Trader) -> bool:
    """Whether this trader's cycles are expected to keep running (all but an aborted one)."""
    return not trader.aborted


def trader_health(trader: Trader, *, now: float, since: float, stale_after: float) -> dict:
    """One trader's heartbeat as JSON-ready data; `fresh` says whether it passes."""
    last = trader.last_cycle_at
    age = now - (last if last is not None else since)
    counted = counts_for_health(trader)
    health = trader.connector.health
    return {
        "account": trader.label,
        "mode": str(trader.mode),
        "counted": counted,
        "fresh": age <= stale_after,
        "last_cycle_at": _rounded(last),
        "last_cycle_age": _rounded(max(0.0, age)),
        "last_cycle_seconds": _rounded(trader.last_cycle_seconds),
        "last_sync_at": _rounded(trader.last_sync_at),
        "circuit": health.circuit,
        "health_score": _rounded(health.score),
        "positions": len(trader.book.positions),
    }


def health_report(
    desk: Desk, notifier: Notifier | None, clock: Clock, scan_interval: float
) -> tuple[bool, dict[str, Any]]:
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
        "now": _rounded(now),
        "uptime": _rounded(desk.uptime()),
        "stale_after": stale_after,
        "traders": traders,
    }
    if notifier is not None:
        stats = notifier.stats()
        body["notifier"] = {
            "queue_depth": stats.queue_depth,
            "queue_size": stats.queue_size,
            "dropped": stats.dropped_total,
            "stale_dropped": stats.stale_dropped,
            "emergencies_active": len(stats.active_emergencies),
        }
    return not stale, body


class HealthServer:
    """/healthz and /metrics on one port. A port that cannot be bound is logged and skipped:
    the health server must never be the reason a trading bot does not run."""

    def __init__(
        self,
        desk: Desk,
        *,
        notifier: Notifier | None,
        clock: Clock,
        port: int,
        scan_interval: float,
        host: str = "0.0.0.0",
    ) -> None:
        self.desk = desk
        self.notifier = notifier
        self.clock = clock
        self.port = port
        self.host = host
        self.scan_interval = scan_interval
        self.registry = new_registry(desk, notifier, clock)
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
        log.info("health server on port %d: /healthz, /metrics", self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            healthy, body = health_report(self.desk, self.notifier, self.clock, self.scan_interval)
        except Exception:  # a bug here must read as "unhealthy", never as a crash
            log.exception("/healthz failed")
            return web.json_response({"status": "error"}, status=500)
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            body = render(self.registry)
        except Exception:
            log.exception("/metrics failed")
            return web.Response(status=500, text="metrics failed; see the bot's log")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
