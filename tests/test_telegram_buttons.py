"""Confirmation buttons tapped more than once: the first tap decides, the command runs once and
the message ends showing its outcome. The real python-telegram-bot Application polls the
loopback fake Bot API; edits are held back so the second tap lands while the first one runs."""

from __future__ import annotations

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


async def _tap_twice_while_the_first_runs(api: FakeTelegramAPI, first: str, second: str) -> str:
    """Tap `first` then `second` on the bot's last message; the second tap is answered while
    the first one's edit ("running…") is still held. Returns the second tap's note."""
    message_id = max(m for c, m in api.messages if c == CHAT)
    api.stall("editMessageText")
    since = len(api.calls)
    api.queue_callback(CHAT, OWNER, first, message_id=message_id)
    api.queue_callback(CHAT, OWNER, second, message_id=message_id)
    await api.wait_until(lambda: api.parked["editMessageText"] >= 1, 5.0, "the first tap's edit")
    note = await api.wait_for_call(
        "answerCallbackQuery", lambda c: bool(c.params.get("text")), since=since
    )
    api.release("editMessageText")
    return note.params["text"]


async def test_kill_confirmed_then_cancel_tapped_while_it_runs_still_kills(api, office):
    async with polling(api, office):
        ask = await say(api, "/kill", "Confirm /kill")
        confirm, cancel = (
            b["callback_data"] for b in ask.params["reply_markup"]["inline_keyboard"][0]
        )
        note = await _tap_twice_while_the_first_runs(api, confirm, cancel)
        done = await api.wait_for_call("editMessageText", lambda c: "killed and flat" in c.text)
    assert note.startswith("Already handled")
    assert office.rig.trader.mode is Mode.KILLED and office.rig.held("BTC/USDT") == 0
    edits = [c.text for c in api.calls_to("editMessageText")]
    assert edits[-1] == done.text and not any("Cancelled" in e for e in edits)
    kills = [e.result for e in office.store.audit_log() if e.command == "kill"]
    assert len(kills) == 1 and "killed and flat" in kills[0]


async def test_confirm_tapped_twice_runs_the_command_once_and_shows_its_outcome(api, office):
    async with polling(api, office):
        ask = await say(api, "/stop", "Confirm /stop")
        confirm = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        note = await _tap_twice_while_the_first_runs(api, confirm, confirm)
        done = await api.wait_for_call("editMessageText", lambda c: "stopping" in c.text)
    assert note.startswith("Already handled")
    edits = [c.text for c in api.calls_to("editMessageText")]
    assert edits == ["⏳ /stop: running…", done.text]
    assert office.rig.trader.mode in (Mode.STOPPING, Mode.STOPPED)
    assert [e.command for e in office.store.audit_log()].count("stop") == 1


async def test_cancel_tapped_first_wins_over_a_later_confirm(api, office):
    async with polling(api, office):
        ask = await say(api, "/kill", "Confirm /kill")
        confirm, cancel = (
            b["callback_data"] for b in ask.params["reply_markup"]["inline_keyboard"][0]
        )
        message_id = max(m for c, m in api.messages if c == CHAT)
        api.queue_callback(CHAT, OWNER, cancel, message_id=message_id)
        api.queue_callback(CHAT, OWNER, confirm, message_id=message_id)
        await api.wait_for_call("editMessageText", lambda c: "Cancelled /kill" in c.text)
        note = await api.wait_for_call("answerCallbackQuery", lambda c: "text" in c.params)
    assert note.params["text"].startswith("Already handled")
    assert office.rig.trader.mode is Mode.RUNNING and office.rig.held("BTC/USDT") > 0
    assert [c.text for c in api.calls_to("editMessageText")] == ["Cancelled /kill: nothing done."]


async def test_a_tap_after_the_deadline_but_before_the_expiry_check_shows_expired(api, office):
    async with polling(api, office, tick=30.0):  # the periodic check does not come first
        ask = await say(api, "/kill", "Confirm /kill")
        confirm = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        office.clock.advance(61)
        api.queue_callback(CHAT, OWNER, confirm)
        edit = await api.wait_for_call("editMessageText")
        note = await api.wait_for_call("answerCallbackQuery")
    assert edit.text == "Confirmation expired: nothing done. Send /kill again."
    assert note.params["text"] == edit.text
    assert office.rig.trader.mode is Mode.RUNNING and office.rig.held("BTC/USDT") > 0
    assert office.store.audit_log()[0].result == "confirmation expired"
