"""/metrics: the bot's live state in the Prometheus text format, read at scrape time.

Nothing is counted twice: the trading core already keeps its counters (the connector's fault
ledger and request count, the order router's outcomes, the notifier's statistics), so one
custom collector reads those live objects when Prometheus scrapes, on the event loop's thread,
and never touches an exchange. The registry is our own, not prometheus_client's global one, so
two bots in one process (the tests) never share a series.

Every series is labelled by `account` (`binance:master`) and, where it is about an exchange's
API, by `exchange` too. A trader that cannot be read (a bug) is skipped and counted in
`chatbot_metrics_errors_total`: a scrape never fails because of one account.

These series say what each account holds and is worth, so chatbot/health.py serves them only to
a request carrying the METRICS_TOKEN bearer token, never on the public /healthz.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from trading.clock import Clock
from trading.modes import Mode

if TYPE_CHECKING:
    from chatbot.notifier import Notifier
    from trading.desk import Desk
    from trading.engine import Trader

log = logging.getLogger("chatbot.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
CIRCUIT_STATES = ("closed", "open", "half_open")
FEED_STATES = ("off", "unavailable", "up", "down")
# The order router's outcome counters, by the name each gets here.
ORDER_OUTCOMES = {
    "placed": "orders the exchange accepted",
    "rejected": "orders the exchange rejected",
    "refused": "order intents the risk gate refused",
    "unknown": "orders sent whose outcome was unknown (left to reconciliation)",
}


class BotCollector:
    """Reads the desk's traders and the notifier at scrape time (see the module docstring)."""

    def __init__(self, desk: Desk, notifier: Notifier | None, clock: Clock) -> None:
        self.desk = desk
        self.notifier = notifier
        self.clock = clock
        self.errors = 0

    def describe(self) -> Iterable[Metric]:
        # Registering must not read live objects; our registry is private, so no name checks.
        return []

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        uptime = GaugeMetricFamily("chatbot_uptime_seconds", "Seconds since the bot started")
        uptime.add_metric([], self.desk.uptime())
        yield uptime
        for trader in list(self.desk.traders):
            try:
                families.add_trader(trader, self.clock.time())
            except Exception:
                self.errors += 1
                log.exception("metrics: reading %s failed", trader.label)
        yield from families.all()
        if self.notifier is not None:
            try:
                yield from _notifier_metrics(self.notifier)
            except Exception:
                self.errors += 1
                log.exception("metrics: reading the notifier failed")
        errors = CounterMetricFamily(
            "chatbot_metrics_errors", "Scrapes that could not read some object (a bug)"
        )
        errors.add_metric([], self.errors)
        yield errors


class _Families:
    """One family per metric, filled trader by trader."""

    def __init__(self) -> None:
        acc = ["account"]
        api = ["account", "exchange"]
        self.mode = GaugeMetricFamily(
            "chatbot_trader_mode", "1 for the trader's current mode", labels=[*acc, "mode"]
        )
        self.orders = {
            outcome: CounterMetricFamily(f"chatbot_orders_{outcome}", text, labels=acc)
            for outcome, text in ORDER_OUTCOMES.items()
        }
        self.faults = CounterMetricFamily(
            "chatbot_faults", "Exchange faults by class", labels=[*api, "kind"]
        )
        self.requests = CounterMetricFamily(
            "chatbot_api_requests", "Exchange requests made, faults included", labels=api
        )
        self.score = GaugeMetricFamily(
            "chatbot_api_health_score",
            "Recent success ratio of exchange requests (0..1)",
            labels=api,
        )
        self.circuit = GaugeMetricFamily(
            "chatbot_circuit_state", "1 for the circuit breaker's state", labels=[*api, "state"]
        )
        self.offset = GaugeMetricFamily(
            "chatbot_clock_offset_seconds", "Exchange clock minus local clock", labels=api
        )
        self.cycle = GaugeMetricFamily(
            "chatbot_cycle_duration_seconds", "Duration of the last trading cycle", labels=acc
        )
        self.cycle_age = GaugeMetricFamily(
            "chatbot_last_cycle_age_seconds", "Seconds since the last cycle ended", labels=acc
        )
        self.sync_age = GaugeMetricFamily(
            "chatbot_last_sync_age_seconds", "Seconds since the last successful sync", labels=acc
        )
        self.positions = GaugeMetricFamily(
            "chatbot_positions", "Open positions the bot opened", labels=acc
        )
        self.open_orders = GaugeMetricFamily(
            "chatbot_open_orders", "Orders of the bot still open", labels=acc
        )
        self.equity = GaugeMetricFamily(
            "chatbot_equity", "Equity in the quote currency", labels=[*acc, "quote"]
        )
        self.exposure = GaugeMetricFamily(
            "chatbot_exposure_ratio", "Share of equity held in positions", labels=acc
        )
        self.feed = GaugeMetricFamily(
            "chatbot_event_feed_state", "1 for the event feed's state", labels=[*acc, "state"]
        )
        self.feed_events = CounterMetricFamily(
            "chatbot_event_feed_events", "Items the exchange pushed", labels=acc
        )
        self.feed_missed = CounterMetricFamily(
            "chatbot_event_feed_missed",
            "Differences the REST sync corrected that the event feed did not say",
            labels=acc,
        )
        self.feed_reconnects = CounterMetricFamily(
            "chatbot_event_feed_reconnects",
            "Event feed sessions that failed and were opened again",
            labels=acc,
        )

    def add_trader(self, trader: Trader, now: float) -> None:
        s = trader.status()
        label = s.account
        exchange = s.health.exchange
        for mode in Mode:
            self.mode.add_metric([label, mode.value], 1.0 if s.mode is mode else 0.0)
        for outcome, family in self.orders.items():
            family.add_metric([label], float(s.orders.get(outcome, 0)))
        health = s.health
        for kind, count in sorted(health.faults_by_kind.items()):
            self.faults.add_metric([label, exchange, kind], float(count))
        self.requests.add_metric([label, exchange], float(health.requests))
        self.score.add_metric([label, exchange], health.score)
        for state in CIRCUIT_STATES:
            self.circuit.add_metric([label, exchange, state], float(health.circuit == state))
        self.offset.add_metric([label, exchange], health.clock_offset_ms / 1000.0)
        if s.last_cycle_seconds is not None:
            self.cycle.add_metric([label], s.last_cycle_seconds)
        if s.last_cycle_at is not None:
            self.cycle_age.add_metric([label], max(0.0, now - s.last_cycle_at))
        if s.last_sync_at is not None:
            self.sync_age.add_metric([label], max(0.0, now - s.last_sync_at))
        self.positions.add_metric([label], float(s.positions))
        self.open_orders.add_metric([label], float(s.open_orders))
        self.equity.add_metric([label, s.quote], s.equity)
        self.exposure.add_metric([label], s.exposure)
        for state in FEED_STATES:
            self.feed.add_metric([label, state], float(s.feed.state == state))
        self.feed_events.add_metric([label], float(s.feed.events))
        self.feed_missed.add_metric([label], float(s.feed.missed))
        self.feed_reconnects.add_metric([label], float(s.feed.reconnects))

    def all(self) -> Iterator[Metric]:
        yield self.mode
        yield from self.orders.values()
        yield from (self.faults, self.requests, self.score, self.circuit, self.offset)
        yield from (self.cycle, self.cycle_age, self.sync_age)
        yield from (self.positions, self.open_orders, self.equity, self.exposure)
        yield from (self.feed, self.feed_events, self.feed_missed, self.feed_reconnects)


def _notifier_metrics(notifier: Notifier) -> Iterator[Metric]:
    stats = notifier.stats()
    counters = (
        ("chatbot_notifications_sent", "Notifications delivered", stats.sent),
        ("chatbot_notifications_dropped", "Dropped (queue full)", stats.dropped_total),
        ("chatbot_notifications_stale", "Notifications skipped as stale", stats.stale_dropped),
        ("chatbot_notification_failures", "Notification sends that failed", stats.send_failures),
        ("chatbot_pages_sent", "Pages delivered to ntfy / Pushover", stats.pages_sent),
        ("chatbot_page_failures", "Pages that failed", stats.page_failures),
        ("chatbot_emergencies", "Emergencies raised", stats.emergencies_raised),
    )
    for name, text, value in counters:
        family = CounterMetricFamily(name, text)
        family.add_metric([], float(value))
        yield family
    gauges = (
        ("chatbot_notify_queue_depth", "Normal notifications waiting", stats.queue_depth),
        (
            "chatbot_emergencies_active",
            "Emergencies not yet cleared",
            len(stats.active_emergencies),
        ),
        (
            "chatbot_emergencies_unacknowledged",
            "Emergencies neither cleared nor acknowledged",
            sum(1 for a in stats.active_emergencies if not a.acked),
        ),
    )
    for name, text, value in gauges:
        family = GaugeMetricFamily(name, text)
        family.add_metric([], float(value))
        yield family


def new_registry(desk: Desk, notifier: Notifier | None, clock: Clock) -> CollectorRegistry:
    """A private registry holding the bot's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BotCollector(desk, notifier, clock))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (version 0.0.4)."""
    return generate_latest(registry)
