"""/metrics: the Prometheus text a scrape gets, parsed back with prometheus_client's parser."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatbot.health import HealthServer
from chatbot.metrics import new_registry, render
from chatbot.notifier import Notifier
from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from tests.test_health import Inbox
from trading.desk import Desk
from trading.errors import Fatal, Rejected, Transient
from trading.events import Emergency

TOKEN = "metrics-token-1234"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}; parsing fails on malformed text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_metrics_parse_as_prometheus_text_and_count_an_injected_fault():
    clock = FakeClock()
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
    await rig.trader.start()
    notifier = Notifier([Inbox()], clock=clock)
    desk = Desk([rig.trader], store=rig.store, clock=clock)
    server = HealthServer(
        desk,
        notifier=notifier,
        clock=clock,
        port=0,
        scan_interval=60.0,
        host="127.0.0.1",
        metrics_token=TOKEN,
    )
    await server.start()
    try:
        rig.paper.inject("fetch_tickers", Transient)  # one timeout, absorbed by a retry
        await rig.trader.run_cycle()
        async with httpx.AsyncClient(timeout=5.0) as http:
            response = await http.get(f"http://127.0.0.1:{server.port}/metrics", headers=BEARER)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        found = samples(response.text)
    finally:
        await server.stop()

    acc, api = {"account": "paper:main"}, {"account": "paper:main", "exchange": "paper"}
    assert value(found, "chatbot_faults_total", **api, kind="transient") == 1
    assert value(found, "chatbot_orders_placed_total", **acc) == 2  # the entry and its stop
    assert value(found, "chatbot_orders_rejected_total", **acc) == 0
    assert value(found, "chatbot_api_requests_total", **api) == rig.connector.health.requests
    assert 0 < value(found, "chatbot_api_health_score", **api) < 1
    assert value(found, "chatbot_circuit_state", **api, state="closed") == 1
    assert value(found, "chatbot_circuit_state", **api, state="open") == 0
    assert value(found, "chatbot_trader_mode", **acc, mode="running") == 1
    assert value(found, "chatbot_trader_mode", **acc, mode="killed") == 0
    assert value(found, "chatbot_positions", **acc) == 1
    assert value(found, "chatbot_cycle_duration_seconds", **acc) >= 0
    assert value(found, "chatbot_notifications_dropped_total") == 0
    assert value(found, "chatbot_emergencies_total") == 0


async def test_metrics_follow_rejections_fatal_faults_and_emergencies_as_they_happen():
    clock = FakeClock()
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT", "SOL/USDT"]))
    await rig.trader.start()
    notifier = Notifier([Inbox()], clock=clock)
    registry = new_registry(Desk([rig.trader], store=rig.store, clock=clock), notifier, clock)
    api = {"account": "paper:main", "exchange": "paper"}

    rig.paper.inject("create_order", Rejected)
    await rig.trader.run_cycle()
    found = samples(render(registry).decode())
    assert value(found, "chatbot_orders_rejected_total", account="paper:main") == 1
    assert value(found, "chatbot_orders_placed_total", account="paper:main") == 2  # and its stop

    rig.paper.inject("fetch_balance", Fatal)
    clock.advance(60)
    await rig.trader.run_cycle()
    for event in rig.of(Emergency):
        notifier.notify(event)
    found = samples(render(registry).decode())
    assert value(found, "chatbot_faults_total", **api, kind="fatal") == 1
    assert value(found, "chatbot_faults_total", **api, kind="rejected") == 1
    assert value(found, "chatbot_trader_mode", account="paper:main", mode="failsafe") == 1
    assert value(found, "chatbot_emergencies_total") >= 1
    assert value(found, "chatbot_emergencies_active") >= 1
    assert value(found, "chatbot_metrics_errors_total") == 0


async def start_server(token: str | None) -> HealthServer:
    clock = FakeClock()
    rig = make_rig(clock)
    await rig.trader.start()
    desk = Desk([rig.trader], store=rig.store, clock=clock)
    server = HealthServer(
        desk,
        notifier=None,
        clock=clock,
        port=0,
        scan_interval=60.0,
        host="127.0.0.1",
        metrics_token=token,
    )
    await server.start()
    return server


@pytest.mark.parametrize("token", [None, ""])
async def test_metrics_without_a_configured_token_is_off_with_a_hint(token):
    server = await start_server(token)
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            url = f"http://127.0.0.1:{server.port}"
            off = await http.get(f"{url}/metrics", headers={"Authorization": "Bearer"})
            health = await http.get(f"{url}/healthz")
    finally:
        await server.stop()
    assert off.status_code == 404
    assert "set METRICS_TOKEN" in off.text and off.text.count("\n") == 1
    assert "chatbot_" not in off.text
    assert health.status_code == 200  # the watchdog's endpoint needs no token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        f"{TOKEN}",
        "Bearer jeton-épais".encode(),  # not ASCII: refused, not a crash
    ],
)
async def test_metrics_with_a_missing_or_wrong_token_is_401_and_shows_nothing(header, caplog):
    server = await start_server(TOKEN)
    headers = {} if header is None else {"Authorization": header}
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            with caplog.at_level(logging.WARNING, logger="chatbot.health"):
                refused = await http.get(f"http://127.0.0.1:{server.port}/metrics", headers=headers)
    finally:
        await server.stop()
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "chatbot_" not in refused.text
    assert server.metrics_refused == 1
    assert "refused" in caplog.text and TOKEN[:8] not in caplog.text


async def test_metrics_accepts_the_token_in_any_case_of_bearer_and_logs_refusals_once_a_minute(
    caplog,
):
    server = await start_server(TOKEN)
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            ok = await http.get(url, headers={"Authorization": f"bearer {TOKEN}"})
            with caplog.at_level(logging.WARNING, logger="chatbot.health"):
                for _ in range(5):  # a scanner's burst: one log line, every refusal counted
                    assert (await http.get(url)).status_code == 401
                logged_in_burst = caplog.text.count("/metrics refused")
                server.clock.advance(60.0)
                assert (await http.get(url)).status_code == 401
    finally:
        await server.stop()
    assert ok.status_code == 200 and "chatbot_equity" in ok.text
    assert logged_in_burst == 1
    assert caplog.text.count("/metrics refused") == 2 and server.metrics_refused == 6
