"""The external watchdog against loopback fakes: the bot's /healthz, the Telegram Bot API (one
fake per bot token) and an ntfy pager; simulated time (FakeClock) drives its polling loop."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from aiohttp import web

from chatbot.config import ConfigError, load_settings, load_watchdog_settings
from chatbot.health import HealthServer
from chatbot.watchdog import build
from chatbot.watchdog_poll import KEY
from sim.clock import FakeClock
from sim.fakes.http import LoopbackServer
from sim.fakes.pager import FakePagers
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.engine_support import ScriptedStrategy, make_rig
from tests.test_health import GatedFeed
from trading.desk import Desk
from trading.venues.paper import PaperExchange

CHAT = 4242
USER = 7
WATCHDOG_TOKEN = "987654321:WatchdogTokenForTestsOnly_abcdefghij"


class FakeBotHealth(LoopbackServer):
    """The bot's /healthz: healthy, stale (503 naming a trader), or gone (the connection closes
    without an answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.state = "ok"
        self.hits = 0
        self.app.router.add_get("/healthz", self._healthz)

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        if self.state == "gone":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=200)  # never reaches the client
        if self.state == "stale":
            return web.json_response({"status": "stale", "stale": ["kraken:master"]}, status=503)
        return web.json_response({"status": "ok", "stale": []})


@pytest.fixture
async def health():
    async with FakeBotHealth() as fake:
        yield fake


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def pagers():
    async with FakePagers() as fake:
        yield fake


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def env(health: FakeBotHealth, api: FakeTelegramAPI, pagers: FakePagers, **extra: str) -> dict:
    return {
        "WATCHDOG_URL": f"{health.url}/healthz",
        "WATCHDOG_STALE_SECONDS": "30",
        "WATCHDOG_INTERVAL_SECONDS": "10",
        "EMERGENCY_REPEAT_SECONDS": "60",
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_CHAT_ID": str(CHAT),
        "TELEGRAM_API_BASE_URL": api.base_url,
        "NTFY_URL": pagers.ntfy_url,
        **extra,
    }


class Timeline:
    """After every poll: the time, and how many alarms and all-clears Telegram and ntfy got."""

    def __init__(self, app, api: FakeTelegramAPI, pagers: FakePagers, clock: FakeClock) -> None:
        self.app, self.api, self.pagers, self.clock = app, api, pagers, clock
        self.rows: list[tuple[float, int, int, int, int]] = []

    async def __call__(self) -> None:
        await self.app.notifier.drain()
        texts = self.api.sent_texts(CHAT)
        self.rows.append(
            (
                self.clock.monotonic(),
                sum("EMERGENCY" in t for t in texts),
                sum("Cleared" in t for t in texts),
                sum(p.priority == "urgent" for p in self.pagers.ntfy),
                sum(p.priority == "default" for p in self.pagers.ntfy),
            )
        )

    def when(self, column: int) -> list[float]:
        """The poll times at which the count in `column` went up."""
        times, last = [], 0
        for row in self.rows:
            if row[column] > last:
                times.append(row[0])
                last = row[column]
        return times


async def start(app) -> None:
    for bot in app.bots:
        await bot.initialize()


async def stop(app) -> None:
    for bot in app.bots:
        await bot.shutdown()


async def test_a_bot_that_stops_answering_is_alarmed_once_per_repeat_period_until_it_recovers(
    health, api, pagers, http
):
    clock = FakeClock()
    settings = load_watchdog_settings(env(health, api, pagers))
    app = build(settings, http=http, clock=clock)
    assert app.listener is None  # no token of its own: it never polls the bot's updates
    timeline = Timeline(app, api, pagers, clock)
    app.watchdog._tick = timeline
    await start(app)
    try:
        await app.watchdog.run(polls=2)  # t = 0, 10: healthy
        health.state = "gone"
        await app.watchdog.run(polls=10)  # t = 20 .. 110
        health.state = "stale"  # it answers, but a trader's cycle has stalled
        await app.watchdog.run(polls=12)  # t = 120 .. 230
        health.state = "ok"
        await app.watchdog.run(polls=8)  # t = 240 .. 310
    finally:
        await stop(app)

    assert [row[0] for row in timeline.rows] == [10.0 * i for i in range(32)]
    # Last healthy at 10 s; 30 s of silence raises the alarm at 40 s, then every 60 s.
    assert timeline.when(1) == [40.0, 100.0, 160.0, 220.0]  # Telegram, with sound
    assert timeline.when(3) == [40.0, 100.0, 160.0, 220.0]  # ntfy, urgent
    assert timeline.when(2) == [240.0] and timeline.when(4) == [240.0]  # the all-clear
    texts = api.sent_texts(CHAT)
    assert "no answer" in texts[0] and f"127.0.0.1:{health.port}" in texts[0]
    assert "HTTP 503 (no recent cycle: kraken:master)" in texts[3]
    assert "unhealthy for about" in texts[-1]
    loud = api.calls_to("sendMessage", CHAT)
    assert [c.params["disable_notification"] for c in loud[:4]] == [False] * 4
    assert app.watchdog.alarms == 1 and app.notifier.stats().active_emergencies == ()
    assert api.calls_to("getUpdates") == []  # sending only: the bot keeps its updates


async def test_ack_to_the_watchdogs_own_bot_stops_the_repeats_and_recovery_is_still_announced(
    health, api, pagers, http
):
    clock = FakeClock()
    async with FakeTelegramAPI(WATCHDOG_TOKEN, username="test_watchdog_bot") as own:
        settings = load_watchdog_settings(
            env(health, api, pagers, WATCHDOG_TELEGRAM_BOT_TOKEN=WATCHDOG_TOKEN)
        )
        app = build(settings, http=http, clock=clock, listen_bot=own.bot())
        assert app.listener is not None
        timeline = Timeline(app, api, pagers, clock)
        app.watchdog._tick = timeline
        await start(app)
        try:
            health.state = "gone"
            await app.watchdog.run(polls=5)  # t = 0 .. 40: the alarm at 30 s
            own.queue_command(CHAT, USER + 1, "/ping", username="mallory")
            own.queue_command(-100, USER, "/ack")  # another chat: ignored
            assert await app.listener.poll_once() == 1
            assert app.notifier.stats().active_emergencies[0].acked is False
            own.queue_command(CHAT, USER, "/ack")
            assert await app.listener.poll_once() == 1
            await app.watchdog.run(polls=15)  # t = 50 .. 190: no repeats
            health.state = "ok"
            await app.watchdog.run(polls=2)
        finally:
            await stop(app)
        replies = own.sent_texts(CHAT)

    assert timeline.when(1) == [30.0] and timeline.when(3) == [30.0]
    assert timeline.when(2) == [200.0]  # the all-clear still reaches Telegram
    assert timeline.when(4) == []  # acknowledged: the pager is not bothered again
    assert "no answer" in replies[0] and "Alarm raised" in replies[0]
    assert replies[1] == "Acknowledged 1 watchdog alarm(s): no more repeats."
    assert own.sent_texts(-100) == []
    assert api.calls_to("getUpdates") == []
    assert app.notifier.stats().active_emergencies == ()


async def test_a_short_outage_raises_nothing(health, api, pagers, http):
    clock = FakeClock()
    app = build(load_watchdog_settings(env(health, api, pagers)), http=http, clock=clock)
    timeline = Timeline(app, api, pagers, clock)
    app.watchdog._tick = timeline
    await start(app)
    try:
        health.state = "stale"
        await app.watchdog.run(polls=3)  # 0, 10, 20 s: under the 30 s limit
        health.state = "ok"
        await app.watchdog.run(polls=3)
    finally:
        await stop(app)
    assert api.sent_texts(CHAT) == [] and pagers.ntfy == []
    assert app.watchdog.failures == 3 and app.watchdog.alarms == 0
    assert health.hits == 6


async def test_without_telegram_the_alarm_goes_to_the_console(health, http):
    clock = FakeClock()
    settings = load_watchdog_settings(
        {"WATCHDOG_URL": f"{health.url}/healthz", "WATCHDOG_STALE_SECONDS": "10"}
    )
    out = io.StringIO()
    app = build(settings, http=http, clock=clock, out=out)
    app.watchdog._tick = app.notifier.drain
    health.state = "gone"
    await app.watchdog.run(polls=3)
    assert out.getvalue().count("[ALERT]") == 1
    assert "has not answered healthy for 10 s" in out.getvalue()
    assert KEY in out.getvalue()


async def test_against_the_real_health_server_a_stalled_cycle_raises_the_alarm_and_clears(http):
    clock = FakeClock()  # one simulated time for the bot and its watchdog
    feed = GatedFeed(clock)
    rig = make_rig(
        clock, strategy=ScriptedStrategy([]), paper=PaperExchange(clock=clock, feed=feed)
    )
    await rig.trader.start()
    await rig.trader.run_cycle()
    server = HealthServer(
        Desk([rig.trader], store=rig.store, clock=clock),
        notifier=None,
        clock=clock,
        port=0,
        scan_interval=60.0,
        host="127.0.0.1",
    )
    await server.start()
    out = io.StringIO()
    settings = load_watchdog_settings(
        {
            "WATCHDOG_URL": f"http://127.0.0.1:{server.port}/healthz",
            "WATCHDOG_STALE_SECONDS": "30",
            "EMERGENCY_REPEAT_SECONDS": "600",
        }
    )
    app = build(settings, http=http, clock=clock, out=out)
    app.watchdog._tick = app.notifier.drain
    try:
        feed.open.clear()  # the exchange hangs in the middle of the next cycle
        stuck = asyncio.ensure_future(rig.trader.run_cycle())
        await app.watchdog.run(polls=18)  # 0 .. 170 s: the cycle is late, not yet stale
        assert app.watchdog.failures == 0 and out.getvalue() == ""
        await app.watchdog.run(polls=3)  # 180 .. 200 s: healthy at 180 s, then 503
        assert app.watchdog.failures == 2 and app.watchdog.alarms == 0
        await app.watchdog.run(polls=1)  # 210 s: 30 s without a healthy answer
        assert app.watchdog.alarms == 1
        assert "HTTP 503 (no recent cycle: paper:main)" in out.getvalue()
        feed.open.set()
        await asyncio.wait_for(stuck, 5)
        # Fresh means a recent cycle AND a recent successful sync: the stuck cycle synced before
        # it hung, so health returns with the scheduler's next cycle.
        await rig.trader.run_cycle()
        await app.watchdog.run(polls=1)
    finally:
        await server.stop()
    lines = out.getvalue().splitlines()
    assert [line.split("]")[0] for line in lines] == ["[ALERT", "[note"]
    assert "answers healthy again" in lines[1]


def test_watchdog_settings_name_every_problem_at_once():
    with pytest.raises(ConfigError) as caught:
        load_watchdog_settings(
            {
                "WATCHDOG_INTERVAL_SECONDS": "60",
                "WATCHDOG_STALE_SECONDS": "30",
                "TELEGRAM_BOT_TOKEN": WATCHDOG_TOKEN,
                "TELEGRAM_CHAT_ID": str(CHAT),
                "WATCHDOG_TELEGRAM_BOT_TOKEN": WATCHDOG_TOKEN,
                "EMERGENCY_REPEAT_SECONDS": "soon",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "WATCHDOG_URL: required" in problems
    assert "WATCHDOG_STALE_SECONDS=30" in problems
    assert "must be another bot than TELEGRAM_BOT_TOKEN" in problems
    assert "EMERGENCY_REPEAT_SECONDS='soon'" in problems
    assert WATCHDOG_TOKEN not in problems  # secrets never echoed


def test_watchdog_settings_defaults_and_secrets_are_hidden():
    settings = load_watchdog_settings({"WATCHDOG_URL": "https://bot.example/healthz"})
    assert (settings.stale_seconds, settings.interval_seconds) == (120.0, 10.0)
    assert settings.timeout_seconds == 10.0 and settings.listen_token is None
    assert settings.notify.emergency_repeat_seconds == 300.0
    with_token = load_watchdog_settings(
        {
            "WATCHDOG_URL": "https://bot.example/healthz",
            "WATCHDOG_TELEGRAM_BOT_TOKEN": WATCHDOG_TOKEN,
            "TELEGRAM_CHAT_ID": str(CHAT),
        }
    )
    assert WATCHDOG_TOKEN not in repr(with_token)
    assert with_token.secrets == (with_token.listen_token,)


def test_the_watchdog_redacts_the_same_pager_credentials_as_the_bot():
    env = {
        "WATCHDOG_URL": "https://bot.example/healthz",
        "NTFY_URL": "https://ntfy.sh/my-secret-topic",
        "PUSHOVER_TOKEN": "po-token-1234",
        "PUSHOVER_USER": "po-user-5678",
    }
    watchdog = {s.get() for s in load_watchdog_settings(env).secrets}
    bot = {s.get() for s in load_settings(env).secrets}
    assert {"https://ntfy.sh/my-secret-topic", "po-token-1234", "po-user-5678"} <= watchdog
    assert watchdog == bot


def test_watchdog_chat_id_needs_one_of_the_two_bot_tokens():
    env = {"WATCHDOG_URL": "https://bot.example/healthz", "TELEGRAM_CHAT_ID": str(CHAT)}
    with pytest.raises(ConfigError) as caught:
        load_watchdog_settings(env)
    (problem,) = caught.value.problems
    assert problem.startswith(
        "TELEGRAM_BOT_TOKEN or WATCHDOG_TELEGRAM_BOT_TOKEN: required when TELEGRAM_CHAT_ID is set"
    )
    own = load_watchdog_settings(env | {"WATCHDOG_TELEGRAM_BOT_TOKEN": WATCHDOG_TOKEN})
    assert own.telegram.chat_id == CHAT and own.telegram.token is None
