"""/healthz over real HTTP on 127.0.0.1: traders on the paper exchange, simulated time."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest

from chatbot.health import HealthServer
from chatbot.notifier import Notifier
from chatbot.senders import Message
from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from trading.desk import Desk
from trading.errors import Rejected
from trading.modes import Mode
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange

SCAN = 60.0


class GatedFeed:
    """A synthetic feed whose ticker call can be made to hang, like an exchange that stops
    answering in the middle of a cycle."""

    has_bulk_tickers = True

    def __init__(self, clock: FakeClock) -> None:
        self._inner = SyntheticFeed(markets=12, clock=clock)
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0

    async def load_markets(self):
        return await self._inner.load_markets()

    async def fetch_tickers(self, symbols=None):
        if not self.open.is_set():
            self.waiting += 1
            await self.open.wait()
        return await self._inner.fetch_tickers(symbols)

    async def fetch_ohlcv(self, symbol, timeframe, limit):
        return await self._inner.fetch_ohlcv(symbol, timeframe, limit)


class Inbox:
    """A sender that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def serve(desk: Desk, clock: FakeClock, notifier: Notifier | None = None) -> HealthServer:
    server = HealthServer(
        desk, notifier=notifier, clock=clock, port=0, scan_interval=SCAN, host="127.0.0.1"
    )
    await server.start()
    assert server.running and server.port > 0
    return server


async def healthz(http: httpx.AsyncClient, server: HealthServer) -> tuple[int, dict]:
    response = await http.get(f"http://127.0.0.1:{server.port}/healthz")
    return response.status_code, response.json()


async def test_healthz_turns_503_when_a_cycle_stalls_and_200_when_it_completes_again(http):
    clock = FakeClock()
    feed = GatedFeed(clock)
    paper = PaperExchange(clock=clock, feed=feed)
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]), paper=paper)
    await rig.trader.start()
    await rig.trader.run_cycle()
    await rig.trader.run_cycle()  # the first one's entry and its stop were paced: time moved
    notifier = Notifier([Inbox()], clock=clock)
    server = await serve(Desk([rig.trader], store=rig.store, clock=clock), clock, notifier)
    try:
        status, body = await healthz(http, server)
        assert status == 200 and body["status"] == "ok" and body["stale"] == []
        (row,) = body["traders"]
        assert row["account"] == "paper:main" and row["mode"] == "running"
        assert row["last_cycle_age"] == 0 and row["circuit"] == "closed"
        assert row["last_sync_age"] == 0

        feed.open.clear()  # the exchange stops answering in the middle of the next cycle
        clock.advance(SCAN)
        stuck = asyncio.ensure_future(rig.trader.run_cycle())
        for _ in range(100):
            if feed.waiting:
                break
            await asyncio.sleep(0)
        assert feed.waiting == 1

        clock.advance(2 * SCAN)  # three intervals since the last finished cycle: still fine
        assert (await healthz(http, server))[0] == 200
        clock.advance(1.0)
        status, body = await healthz(http, server)
        assert status == 503 and body["status"] == "stale" and body["stale"] == ["paper:main"]
        assert body["traders"][0]["last_cycle_age"] == pytest.approx(3 * SCAN + 1)
        assert body["traders"][0]["fresh"] is False

        feed.open.set()  # the exchange answers again: the cycle completes
        await asyncio.wait_for(stuck, 5)
        status, body = await healthz(http, server)
        assert status == 200 and body["traders"][0]["last_cycle_age"] == 0
    finally:
        await server.stop()


async def test_before_the_first_cycle_the_age_counts_from_the_bots_start(http):
    clock = FakeClock()
    rig = make_rig(clock)
    desk = Desk([rig.trader], store=rig.store, clock=clock)
    server = await serve(desk, clock)
    try:
        clock.advance(3 * SCAN)
        status, body = await healthz(http, server)
        assert status == 200 and body["traders"][0]["last_cycle_age"] is None
        assert body["traders"][0]["last_sync_age"] is None
        assert body["uptime"] == 3 * SCAN
        clock.advance(1.0)
        assert (await healthz(http, server))[0] == 503
    finally:
        await server.stop()


async def test_a_paused_trader_must_still_cycle_but_an_aborted_one_is_not_expected_to(http):
    clock = FakeClock()
    paused, aborted = make_rig(clock), make_rig(clock)
    for rig in (paused, aborted):
        await rig.trader.start()
        await rig.trader.run_cycle()
    assert (await paused.trader.pause()).ok
    assert (await aborted.trader.abort()).ok
    desk = Desk([paused.trader, aborted.trader], store=paused.store, clock=clock)
    server = await serve(desk, clock)
    try:
        clock.advance(4 * SCAN)
        status, body = await healthz(http, server)
        assert status == 503 and len(body["stale"]) == 1
        assert paused.trader.mode is Mode.PAUSED
        await paused.trader.run_cycle()
        status, body = await healthz(http, server)
        assert status == 200, body
        assert [t["counted"] for t in body["traders"]] == [True, False]
        assert body["traders"][1]["fresh"] is False  # reported, but not held against the bot
    finally:
        await server.stop()


async def test_a_port_already_taken_is_logged_and_the_bot_goes_on(caplog):
    clock = FakeClock()
    rig = make_rig(clock)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(
            Desk([rig.trader], store=rig.store, clock=clock),
            notifier=None,
            clock=clock,
            port=port,
            scan_interval=SCAN,
            host="127.0.0.1",
        )
        with caplog.at_level(logging.WARNING, logger="chatbot.health"):
            await server.start()
        assert not server.running
        assert "health server not started" in caplog.text
        await server.stop()  # harmless when it never started


PUBLIC_KEYS = {"status", "stale", "uptime", "stale_after", "traders"}
PUBLIC_TRADER_KEYS = {
    "account", "mode", "counted", "fresh", "last_cycle_age", "last_sync_age", "circuit",
}  # fmt: skip


async def test_healthz_is_public_but_shows_no_equity_balances_or_positions(http):
    # The port is public (the watchdog reaches it through the host's domain): adding a field
    # here is a decision about what strangers may read, so this test names every key.
    clock = FakeClock()
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert rig.trader.book.positions  # something worth hiding is held
    notifier = Notifier([Inbox()], clock=clock)
    desk = Desk([rig.trader], store=rig.store, clock=clock)
    server = HealthServer(
        desk,
        notifier=notifier,
        clock=clock,
        port=0,
        scan_interval=SCAN,
        host="127.0.0.1",
        metrics_token="s3cret-token",
    )
    await server.start()
    try:
        response = await http.get(f"http://127.0.0.1:{server.port}/healthz")  # no credentials
    finally:
        await server.stop()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    assert set(body["traders"][0]) == PUBLIC_TRADER_KEYS
    text = response.text.lower()
    for word in ("equity", "balance", "position", "exposure", "eth", "usdt", "notifier"):
        assert word not in text, word
    equity = rig.trader.status().equity
    assert f"{equity:.2f}"[:4] not in text


async def test_a_trader_whose_sync_keeps_failing_turns_stale_though_its_cycles_complete(http):
    """A failed sync skips the rest of the cycle, which still completes: no stop-loss is
    checked, so the heartbeat is the last successful sync, not the last attempted cycle."""
    clock = FakeClock()
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
    await rig.trader.start()
    await rig.trader.run_cycle()
    await rig.trader.run_cycle()  # the first one's entry and its stop were paced: time moved
    server = await serve(Desk([rig.trader], store=rig.store, clock=clock), clock)
    rig.paper.inject("fetch_balance", Rejected("BadRequest: unknown parameter"), count=-1)
    try:
        for _ in range(3):
            clock.advance(SCAN)
            await rig.trader.run_cycle()
        status, body = await healthz(http, server)
        row = body["traders"][0]
        assert status == 200 and row["last_cycle_age"] == 0 and row["last_sync_age"] == 3 * SCAN

        clock.advance(1.0)
        await rig.trader.run_cycle()
        status, body = await healthz(http, server)
        assert status == 503 and body["stale"] == ["paper:main"]
        assert body["traders"][0]["last_cycle_age"] == 0  # cycles complete, skipped
        assert rig.trader.mode is Mode.RUNNING  # not escalated yet (300 s): the watchdog knows

        rig.paper.clear_faults()
        await rig.trader.run_cycle()
        assert (await healthz(http, server))[0] == 200
    finally:
        await server.stop()
