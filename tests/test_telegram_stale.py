"""Commands that waited for the bot while it was down, judged on Telegram's clock. The host's
clock is injected minutes off (`wall`); the fake Bot API dates messages and answers on the real
clock, as Telegram would. Only updates already waiting when polling started can be stale."""

from __future__ import annotations

import time

import pytest

from chatbot.telegram_guard import TelegramTime
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.telegram_support import (  # noqa: F401 (fixtures)
    CHAT,
    OWNER,
    api_fixture,
    office_holding_btc,
    polling,
    say,
)
from trading.modes import Mode

SIX_MIN_FAST = 360.0


def fast_host() -> float:
    return time.time() + SIX_MIN_FAST


def waiting(api: FakeTelegramAPI, text: str, *, ago: float) -> None:
    """A command the owner sent `ago` seconds ago, not yet fetched by anyone."""
    update = api.queue_command(CHAT, OWNER, text)
    update["message"]["date"] = int(time.time() - ago)


async def test_kill_now_is_obeyed_when_the_host_clock_is_six_minutes_fast(api, office):
    async with polling(api, office, wall=fast_host):
        reply = await say(api, "/kill now", "killed")
    assert "killed and flat" in reply.text and "reply_markup" not in reply.params
    assert office.rig.trader.mode is Mode.KILLED and office.rig.held("BTC/USDT") == 0


async def test_a_recent_command_waiting_at_start_runs_though_the_host_clock_is_fast(api, office):
    waiting(api, "/pause", ago=10)
    async with polling(api, office, wall=fast_host):
        await api.wait_for_message(CHAT, "paused (was running)")
    assert office.rig.trader.mode is Mode.PAUSED


async def test_a_command_received_while_polling_runs_whatever_its_date(api, office):
    async with polling(api, office):
        update = api.queue_command(CHAT, OWNER, "/pause")
        update["message"]["date"] = int(time.time()) - 3600  # Telegram held it an hour
        await api.wait_for_message(CHAT, "paused (was running)")
    assert office.rig.trader.mode is Mode.PAUSED


async def test_a_stale_kill_now_asks_for_a_tap_and_the_tap_kills(api, office):
    waiting(api, "/kill now", ago=3600)
    async with polling(api, office, wall=fast_host):
        ask = await api.wait_for_message(CHAT, "Confirm /kill")
        assert "/kill now was sent 60 min ago" in ask.text
        assert office.rig.trader.mode is Mode.RUNNING  # nothing yet
        data = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.queue_callback(CHAT, OWNER, data)
        await api.wait_for_call("editMessageText", lambda c: "killed and flat" in c.text)
    assert office.rig.trader.mode is Mode.KILLED and office.rig.held("BTC/USDT") == 0
    results = [e.result for e in office.store.audit_log()]
    assert results[-1] == "stale: asked to confirm" and "killed and flat" in results[0]


@pytest.mark.parametrize("line", ["/pause", "/ack", "/stop now"])
async def test_a_stale_safety_command_asks_instead_of_refusing(api, office, line):
    waiting(api, line, ago=1800)
    async with polling(api, office):
        ask = await api.wait_for_message(CHAT, "Confirm /")
    assert "sent 30 min ago" in ask.text and "Not run" not in ask.text
    assert [b["text"] for b in ask.params["reply_markup"]["inline_keyboard"][0]] == [
        "Confirm",
        "Cancel",
    ]
    assert office.rig.trader.mode is Mode.RUNNING


async def test_a_stale_buy_is_refused_only_past_the_limit_on_telegrams_clock(api, office):
    waiting(api, "/buy SOL/USDT 50", ago=3600)
    waiting(api, "/buy ETH/USDT 50", ago=200)  # stale by the fast host clock, not by Telegram's
    async with polling(api, office, wall=fast_host):
        refused = await api.wait_for_message(CHAT, "Not run")
        await api.wait_for_message(CHAT, "bought")
    assert "/buy SOL/USDT 50 was sent 60 min ago" in refused.text
    positions = office.rig.trader.book.positions
    assert "ETH/USDT" in positions and "SOL/USDT" not in positions


def test_telegram_time_follows_the_date_header_not_the_host_clock():
    ticks = [1000.0]
    clock = TelegramTime(wall=lambda: 2_000_000_000.0, monotonic=lambda: ticks[0])
    assert not clock.known and clock.now() == 2_000_000_000.0  # nothing heard yet: the host's
    clock.observe("Sun, 22 Nov 2026 07:10:58 GMT")
    ticks[0] += 42.5
    assert clock.known and clock.now() == 1795331458.0 + 42.5
    clock.observe("not a date")
    clock.observe(None)
    assert clock.now() == 1795331458.0 + 42.5  # garbage changes nothing


async def test_a_stale_kill_with_a_bad_account_is_refused_without_buttons(api, office):
    waiting(api, "/kill nope now", ago=3600)
    async with polling(api, office):
        reply = await api.wait_for_message(CHAT, "No account nope")
    assert "reply_markup" not in reply.params and office.rig.trader.mode is Mode.RUNNING
    assert [e.result for e in office.store.audit_log()] == [
        "No account nope. Known accounts: paper:main."
    ]
