"""Who the Telegram transport obeys, and what it does when Telegram misbehaves: the real
python-telegram-bot Application polling the loopback fake Bot API."""

from __future__ import annotations

import logging
import time

import pytest

from chatbot.telegram import TelegramTransport, file_url
from sim.clock import FakeClock
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.handlers_support import make_office
from tests.telegram_support import (  # noqa: F401 (fixtures)
    CHAT,
    OTHER_CHAT,
    OWNER,
    STRANGER,
    api_fixture,
    office_holding_btc,
    polling,
    say,
    settings_for,
)
from trading.modes import Mode


def _reports(api: FakeTelegramAPI) -> list[str]:
    return [t for t in api.sent_texts(CHAT) if "Unauthorized" in t]


async def test_another_chat_gets_no_reply_is_logged_and_reported_once_an_hour(api, office, caplog):
    caplog.set_level(logging.WARNING, logger="chatbot.telegram")
    async with polling(api, office):
        api.queue_command(OTHER_CHAT, STRANGER, "/kill now", username="mallory")
        first = await api.wait_for_message(CHAT, "Unauthorized")
        assert (
            "1 try" in first.text and f"user {STRANGER} @mallory in chat {OTHER_CHAT}" in first.text
        )
        api.queue_command(OTHER_CHAT, STRANGER, "/info")
        await say(api, "/ping", "pong")  # the second try has been seen by now
        assert len(_reports(api)) == 1  # within the hour: counted, not reported
        since = len(api.calls)
        office.clock.advance(3601)  # the periodic check sends what the hour collected
        later = await api.wait_for_message(CHAT, "Unauthorized", since=since)
        assert "1 try" in later.text and "/info" in later.text
    assert api.calls_to("sendMessage", OTHER_CHAT) == []
    assert office.rig.trader.mode is Mode.RUNNING and office.rig.held("BTC/USDT") > 0
    ignored = [r.getMessage() for r in caplog.records if "unauthorized" in r.getMessage().lower()]
    ignored += [r.getMessage() for r in caplog.records if "not authorized" in r.getMessage()]
    # The sender's first try at once, the rest in the hourly report's line.
    assert len(ignored) == 2 and f"from user {STRANGER} in chat {OTHER_CHAT}" in ignored[1]
    assert "1 more unauthorized tries ignored" in ignored[0] and "/info" in ignored[0]
    audited = [e for e in office.store.audit_log() if e.result.startswith("ignored: ")]
    assert [e.command for e in audited] == ["info", "kill"]  # newest first


async def test_a_user_not_allowed_in_the_owner_chat_is_ignored_and_the_owner_obeyed(api, office):
    async with polling(api, office, allowed=frozenset({OWNER})):
        api.queue_command(CHAT, STRANGER, "/pause")
        await api.wait_for_message(CHAT, "Unauthorized")
        assert office.rig.trader.mode is Mode.RUNNING
        await say(api, "/pause", "paused (was running)")
    assert office.rig.trader.mode is Mode.PAUSED
    texts = api.sent_texts(CHAT)
    assert len(texts) == 2 and "paused" not in texts[0]  # the stranger got no answer


async def test_a_button_pressed_by_a_stranger_does_nothing(api, office):
    async with polling(api, office, allowed=frozenset({OWNER})):
        ask = await say(api, "/kill", "Confirm /kill")
        data = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.queue_callback(CHAT, STRANGER, data)
        await api.wait_for_message(CHAT, "a button press")
    assert api.calls_to("answerCallbackQuery") == [] and api.calls_to("editMessageText") == []
    assert office.rig.trader.mode is Mode.RUNNING


async def test_without_an_owner_chat_nobody_is_obeyed(api, office):
    transport = TelegramTransport(
        settings_for(api, chat_id=None), office.dispatcher, clock=office.clock
    )
    await transport.start()
    try:
        api.queue_command(CHAT, OWNER, "/kill now")
        api.queue_command(CHAT, OWNER, "/ping")
        # The look at the backlog at start, then two polls after the commands were queued.
        await api.wait_until(lambda: len(api.calls_to("getUpdates")) >= 4, 5.0, "two polls")
    finally:
        await transport.stop()
    assert api.sent_texts() == [] and office.rig.trader.mode is Mode.RUNNING


async def test_the_owner_group_upgraded_to_a_supergroup_is_obeyed_there(api, office):
    supergroup = -100777
    async with polling(api, office) as transport:
        update = api.queue_message(CHAT, OWNER, "")
        update["message"].pop("text")
        update["message"]["migrate_to_chat_id"] = supergroup
        await api.wait_until(lambda: transport.owner_chat == supergroup, 5.0, "the move")
        api.queue_command(supergroup, OWNER, "/pause")
        await api.wait_for_message(supergroup, "paused (was running)")
    assert office.rig.trader.mode is Mode.PAUSED
    assert api.sent_texts(CHAT) == []  # the old group is gone; nothing goes there


async def test_an_edited_command_is_not_run_again(api, office):
    async with polling(api, office):
        update = api.queue_command(CHAT, OWNER, "/kill now")
        update["edited_message"] = update.pop("message")  # the same text, as an edit
        await say(api, "/ping", "pong")
    assert office.rig.trader.mode is Mode.RUNNING and office.rig.held("BTC/USDT") > 0


async def test_a_command_sent_while_the_bot_was_down_is_not_run(api, office):
    orders = office.rig.created()
    update = api.queue_command(CHAT, OWNER, "/buy SOL/USDT 50")  # waiting before polling starts
    update["message"]["date"] = int(time.time()) - 3600
    async with polling(api, office):
        reply = await api.wait_for_message(CHAT, "Not run")
    assert "sent 60 min ago" in reply.text and "Send it again" in reply.text
    assert "SOL/USDT" not in office.rig.trader.book.positions
    assert office.rig.created() == orders
    assert office.store.audit_log()[0].result == "ignored: stale"


async def test_an_unknown_command_points_to_help_but_another_bots_is_ignored(api, office):
    async with polling(api, office):
        api.queue_command(CHAT, OWNER, "/ping@some_other_bot")
        await say(api, "/status", "Unknown command /status")
        await say(api, "/ping@test_trading_bot", "pong")
    assert len(api.sent_texts(CHAT)) == 2


async def test_a_reply_telegram_cannot_parse_is_sent_again_as_plain_text(api, office):
    api.fail_next(
        "sendMessage", status=400, json=api.error(400, "Bad Request: can't parse entities")
    )
    async with polling(api, office):
        api.queue_command(CHAT, OWNER, "/ping")
        reply = await api.wait_for_message(CHAT, "pong")
    assert reply.text.startswith("pong - up") and "parse_mode" not in reply.params


async def test_flood_control_on_a_reply_is_waited_out(api, office):
    api.fail_next("sendMessage", status=429, json=api.flood(retry_after=1))
    async with polling(api, office):
        api.queue_command(CHAT, OWNER, "/ping")
        reply = await api.wait_for_message(CHAT, "pong")
    refused = api.calls_to("sendMessage", ok=False)
    assert len(refused) == 1 and reply.at - refused[0].at >= 0.9


async def test_a_server_error_on_a_reply_is_retried(api, office):
    api.fail_next("sendMessage", times=2, status=500, json=api.error(500, "Internal"))
    async with polling(api, office):
        await say(api, "/ping", "pong")
    assert len(api.calls_to("sendMessage", ok=False)) == 2


async def test_stop_is_safe_before_start_and_twice(api, office):
    transport = TelegramTransport(settings_for(api), office.dispatcher, clock=office.clock)
    await transport.stop()
    await transport.start()
    await transport.stop()
    await transport.stop()
    assert not transport.app.running


def test_a_self_hosted_api_serves_files_beside_the_methods():
    assert file_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"


def test_a_transport_needs_a_token(api):
    settings = settings_for(api)
    office = make_office(FakeClock())
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        TelegramTransport(
            type(settings)(None, CHAT, frozenset(), None), office.dispatcher, clock=office.clock
        )
    office.store.close()


async def test_a_group_upgrade_by_a_member_not_allowed_is_still_followed(api, office):
    supergroup = -100777
    async with polling(api, office, allowed=frozenset({OWNER})) as transport:
        update = api.queue_message(CHAT, STRANGER, "")  # the admin who changed the setting
        update["message"].pop("text")
        update["message"]["migrate_to_chat_id"] = supergroup
        await api.wait_until(lambda: transport.owner_chat == supergroup, 5.0, "the move")
        api.queue_command(supergroup, OWNER, "/pause")
        await api.wait_for_message(supergroup, "paused (was running)")
    assert office.rig.trader.mode is Mode.PAUSED
    assert _reports(api) == [] and api.sent_texts(CHAT) == []  # a service message, no intruder


async def test_the_supergroup_announcing_where_it_came_from_is_followed(api, office):
    supergroup = -100778
    async with polling(api, office, allowed=frozenset({OWNER})) as transport:
        update = api.queue_message(supergroup, STRANGER, "")
        update["message"].pop("text")
        update["message"]["migrate_from_chat_id"] = CHAT
        await api.wait_until(lambda: transport.owner_chat == supergroup, 5.0, "the move")
        api.queue_command(supergroup, OWNER, "/ping")
        await api.wait_for_message(supergroup, "pong")
    assert api.sent_texts(CHAT) == [] and api.sent_texts(supergroup)[0].startswith("<b>pong")


async def test_a_reply_refused_because_the_group_moved_goes_to_the_supergroup(api, office):
    supergroup = -100779
    moved = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": supergroup},
    }
    api.fail_next("sendMessage", status=400, json=moved)
    async with polling(api, office) as transport:
        api.queue_command(CHAT, OWNER, "/ping")
        await api.wait_for_message(supergroup, "pong")
        assert transport.owner_chat == supergroup
        api.queue_command(supergroup, OWNER, "/pause")
        await api.wait_for_message(supergroup, "paused (was running)")
    assert office.rig.trader.mode is Mode.PAUSED and api.sent_texts(CHAT) == []


async def test_a_flood_of_tries_logs_each_sender_once_and_the_rest_once_an_hour(
    api, office, caplog
):
    caplog.set_level(logging.WARNING, logger="chatbot.telegram")
    async with polling(api, office):
        for _ in range(20):
            api.queue_command(OTHER_CHAT, STRANGER, "/kill now")
        api.queue_command(OTHER_CHAT, STRANGER + 1, "/pause")
        await say(api, "/ping", "pong")  # every try has been seen by now
        lines = [r.getMessage() for r in caplog.records if "authorized" in r.getMessage()]
        assert len(lines) == 2 and len(office.store.audit_log(100)) == 3  # + the /ping
        since = len(api.calls)
        office.clock.advance(3601)
        report = await api.wait_for_message(CHAT, "Unauthorized", since=since)
    assert "20 tries" in report.text and f"/pause from user {STRANGER + 1}" in report.text
    lines = [r.getMessage() for r in caplog.records if "authorized" in r.getMessage()]
    assert len(lines) == 3 and "19 more unauthorized tries ignored" in lines[-1]
    rows = [e for e in office.store.audit_log(100) if e.result.startswith("ignored: ")]
    assert len(rows) == 3 and "19 more unauthorized tries" in rows[0].result
    assert office.rig.trader.mode is Mode.RUNNING
