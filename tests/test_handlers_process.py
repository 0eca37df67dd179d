"""The small commands that ask the live process itself (/ping's start state, /roll, /cancel,
/version, /logs), through the real dispatcher."""

from __future__ import annotations

import logging

from tests.handlers_support import office_fixture  # noqa: F401 (fixtures by name)
from trading.errors import Fatal
from trading.modes import Mode


async def test_ping_says_an_account_never_started_instead_of_running(office):
    rig = office.rig
    rig.paper.inject("load_markets", Fatal("invalid api key"), count=-1)
    rig.trader.timing.started = False
    await rig.trader.run_cycle()

    reply = await office.run("/ping")

    assert "paper:main: not started: markets never loaded" in reply.text
    assert "invalid api key" in reply.text


async def test_roll_cancel_and_version_answer_from_the_live_process(office):
    rolled = await office.run("/roll")
    assert rolled.ok and "🎲" in rolled.text and "live process" in rolled.text
    asked = await office.run("/kill")
    assert asked.buttons
    cancelled = await office.run("/cancel")
    assert "Cancelled /kill: nothing done." in cancelled.text
    pressed = await office.dispatcher.press(asked.buttons[0].data, "tester")
    assert not pressed.ok and office.rig.trader.mode is Mode.RUNNING  # the tap comes too late
    assert "Nothing to cancel" in (await office.run("/cancel")).text
    assert "chatbot" in (await office.run("/version")).text
    refused = await office.run("/roll 7")
    assert not refused.ok and "takes no arguments" in refused.text


async def test_logs_shows_the_last_lines_redacted_and_refuses_a_bad_count(office):
    office.dispatcher.ctx.logs = lambda n: [f"line {i}" for i in range(n)]
    reply = await office.run("/logs 3")
    assert reply.ok and "line 0" in reply.text and "line 2" in reply.text
    assert "line 3" not in reply.text
    refused = await office.run("/logs 0")
    assert not refused.ok and "from 1 to 100" in refused.text


def test_the_kept_log_lines_are_redacted_like_the_log():
    from chatbot.logsetup import RecentLines, RedactingFormatter

    recent = RecentLines(keep=2)
    recent.setFormatter(RedactingFormatter(["s3cret"]))
    log = logging.getLogger("test.recent")
    log.addHandler(recent)
    try:
        for word in ("one", "two s3cret", "three"):
            log.warning(word)
    finally:
        log.removeHandler(recent)
    assert len(recent.last(10)) == 2 and "s3cret" not in " ".join(recent.last(10))
