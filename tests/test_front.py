"""The command front: the real python-telegram-bot Application in a process of its own
(`python -m chatbot.front`) against the loopback fake Bot API, in front of paper accounts whose
Dispatcher answers on this (the trading) loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import pytest

from chatbot.front import QUIET_AFTER_SECONDS, RemotePort
from chatbot.front_host import KEY, CommandFront, front_environment
from sim.clock import FakeClock
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.handlers_support import make_office
from tests.telegram_support import CHAT, OWNER, say, settings_for
from tests.waiting import eventually
from trading.events import Emergency, EmergencyCleared, Event
from trading.modes import Mode

OPTIONS = {"tick": 0.05, "poll_timeout": 1.0, "retry_backoff": 0.05}


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def office():
    o = make_office(FakeClock())
    await o.start()
    yield o
    await o.close()


@contextlib.asynccontextmanager
async def front_of(api, office, events: list[Event] | None = None, silent_limit: float = 60.0):
    front = CommandFront(
        settings_for(api),
        office.dispatcher,
        clock=office.clock,
        notify=(events if events is not None else []).append,
        pulse_every=0.05,
        restart_after=(0.05, 0.2),
        silent_limit=silent_limit,
        options=OPTIONS,
    )
    await front.start()
    try:
        yield front
    finally:
        await front.shutdown()


async def test_commands_are_answered_through_the_front_and_audited_here(api, office):
    async with front_of(api, office) as front:
        assert front.process is not None and front.process.pid is not None
        ping = await say(api, "/ping", "pong")
        info = await say(api, "/info", "paper:main")
        await eventually(lambda: _audited(office, "ping"), 10, "/ping audited")
    assert "paper:main: running" in ping.text
    assert "Equity" in info.text or "equity" in info.text
    assert front.process.returncode == 0  # told to stop, and it did


async def test_ping_after_a_command_shows_what_the_command_changed(api, office):
    async with front_of(api, office) as front:
        front.pulse_every = 3600.0  # only the pulse sent with each answer
        await asyncio.sleep(0.1)
        await say(api, "/pause", "pause")
        assert office.rig.trader.mode is Mode.PAUSED
        ping = await say(api, "/ping", "pong")
    assert "paper:main: paused" in ping.text


async def test_a_confirmation_pressed_twice_runs_once(api, office):
    await office.enter(office.rig, ["BTC/USDT"])
    async with front_of(api, office):
        ask = await say(api, "/kill", "Confirm /kill")
        data = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        message_id = max(m for c, m in api.messages if c == CHAT)
        api.queue_callback(CHAT, OWNER, data, message_id=message_id)
        api.queue_callback(CHAT, OWNER, data, message_id=message_id)
        await api.wait_for_call("editMessageText", lambda c: "killed and flat" in c.text)
        notes = [c for c in api.calls_to("answerCallbackQuery") if c.params.get("text")]
        assert len(api.calls_to("answerCallbackQuery")) == 2
    assert office.rig.trader.mode is Mode.KILLED and office.rig.held("BTC/USDT") == 0
    assert len(notes) == 1  # the second press only got a note
    kills = [e for e in office.store.audit_log() if e.command == "kill"]
    assert [e.result for e in kills if "killed" in e.result] == [kills[0].result]


async def test_a_front_that_dies_is_started_again_and_the_owner_told(api, office):
    events: list[Event] = []
    async with front_of(api, office, events) as front:
        await say(api, "/ping", "pong")
        first = front.process
        assert first is not None
        first.send_signal(signal.SIGKILL)
        await eventually(lambda: front.process is not first and _ready(front), 30, "restarted")
        ping = await say(api, "/ping", "pong")
    assert "paper:main" in ping.text
    down = [e for e in events if isinstance(e, Emergency) and e.key == KEY]
    back = [e for e in events if isinstance(e, EmergencyCleared) and e.key == KEY]
    assert len(down) == 1 and "commands are not heard" in down[0].message
    assert len(back) == 1 and front.restarts == 1


async def test_a_wedged_front_is_ended_and_started_again(api, office):
    """A front that stops answering (here: stopped by SIGSTOP, as a stuck loop would look) is
    ended once silent past the limit, and the owner hears the chat was deaf meanwhile."""
    events: list[Event] = []
    async with front_of(api, office, events, silent_limit=5.0) as front:
        await say(api, "/ping", "pong")
        wedged = front.process
        assert wedged is not None
        wedged.send_signal(signal.SIGSTOP)
        await eventually(lambda: front.process is not wedged and _ready(front), 30, "replaced")
        await say(api, "/ping", "pong")
    assert wedged.returncode == -signal.SIGKILL
    assert [e.key for e in events if isinstance(e, Emergency)] == [KEY]


async def test_ctrl_c_and_sigterm_leave_the_front_to_the_trading_process(api, office):
    """Ctrl-C in a terminal reaches the whole process group: the front must keep answering
    until the trading process orders the shutdown (it may still have a /kill to report)."""
    async with front_of(api, office) as front:
        process = front.process
        assert process is not None
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
        ping = await say(api, "/ping", "pong")
        assert process.returncode is None and front.process is process
    assert "paper:main" in ping.text
    assert process.returncode == 0


async def test_the_front_ends_when_the_trading_process_is_gone(api, office):
    front = CommandFront(settings_for(api), office.dispatcher, clock=office.clock, options=OPTIONS)
    await front.start()
    try:
        assert front._supervisor is not None and front._wire is not None
        front._supervisor.cancel()  # as when this process dies: nobody starts it again
        front._wire.writer.transport.abort()
        assert front.process is not None
        assert await asyncio.wait_for(front.process.wait(), 30) == 0
    finally:
        await front.shutdown()


async def test_a_token_telegram_refuses_means_start_raises(api, office):
    api.fail_next("getMe", 5, status=401, json=api.error(401, "Unauthorized"))
    front = CommandFront(settings_for(api), office.dispatcher, clock=office.clock, options=OPTIONS)
    with pytest.raises(Exception, match=r"Unauthorized|token"):
        await front.start()
    await front.shutdown()
    assert front.process is None  # never started polling with a refused token


def test_the_front_gets_no_credential_in_its_environment():
    environ = {
        "PATH": "/usr/bin",
        "HTTPS_PROXY": "http://proxy:3128",
        "KRAKEN_MASTER_API_KEY": "k",
        "KRAKEN_MASTER_API_SECRET": "s",
        "OKX_MASTER_API_PASSWORD": "p",
        "TELEGRAM_BOT_TOKEN": "1:x",
        "METRICS_TOKEN": "m",
        "NTFY_URL": "https://ntfy.sh/secret-topic",
        "PUSHOVER_USER": "u",
        "PYTHONPATH": "/extra",
    }
    kept = front_environment(environ)
    assert set(kept) == {"PATH", "HTTPS_PROXY", "PYTHONPATH"}
    assert kept["PYTHONPATH"].endswith(":/extra") and kept["PYTHONPATH"] != "/extra"


class _Wire:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, message: dict) -> None:
        self.sent.append(message)


async def test_ping_says_when_the_trading_side_has_gone_quiet():
    now = [100.0]
    port = RemotePort(_Wire(), 60.0, monotonic=lambda: now[0])  # type: ignore[arg-type]
    assert "not reported yet" in port.ping().text
    port.received({"op": "pulse", "text": "<b>pong</b> - up 5m\npaper:main: running"})
    assert port.ping().text.endswith("running")
    now[0] += QUIET_AFTER_SECONDS + 7
    quiet = port.ping().text
    assert "paper:main: running" in quiet
    assert f"has not answered for {QUIET_AFTER_SECONDS + 7:.0f} s" in quiet


def _audited(office, command: str) -> bool:
    return any(e.command == command for e in office.store.audit_log())


def _ready(front: CommandFront) -> bool:
    started = front._started
    return started is not None and started.done() and started.exception() is None
