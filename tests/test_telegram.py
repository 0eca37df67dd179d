"""The Telegram transport end to end: the real python-telegram-bot Application polling the
loopback fake Bot API, the real Dispatcher and handlers, the engine on the paper exchange."""

from __future__ import annotations

import asyncio

import pytest
from telegram.error import NetworkError

from chatbot.telegram import TelegramTransport
from handlers.table import COMMANDS
from sim.clock import FakeClock
from sim.fakes.telegram_api import FakeTelegramAPI
from tests.handlers_support import make_office
from tests.telegram_support import CHAT, OWNER, StallingPaper, polling, say, settings_for
from trading.modes import Mode


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


async def test_start_publishes_the_command_menu_generated_from_the_table(api, office):
    async with polling(api, office):
        await api.wait_for_call("getUpdates")
    assert [c.method for c in api.calls[:2]] == ["getMe", "setMyCommands"]
    assert api.commands == [{"command": c.name, "description": c.help} for c in COMMANDS]


async def test_ping_is_answered_in_html_in_the_owner_chat(api, office):
    async with polling(api, office):
        reply = await say(api, "/ping", "pong")
    assert reply.params["parse_mode"] == "HTML" and reply.text.startswith("<b>pong</b>")
    entry = office.store.audit_log()[0]
    assert (entry.who, entry.command) == (f"telegram:{OWNER} @alice", "ping")


async def test_every_command_in_the_table_acts_and_answers(api, office):
    rig, trader = office.rig, office.rig.trader
    await office.enter(rig, ["BTC/USDT"])
    office.store.add_equity(trader.label, office.clock.time() - 600, 10_000.0, 0.0)
    async with polling(api, office):
        await say(api, "/help", "<b>Commands</b>")
        await say(api, "/info", "paper:main</b> · running")
        await say(api, "/ban eth", "ETH/USDT banned")
        assert "ETH/USDT" in office.store.bans(trader.label)
        await say(api, "/bans", "• ETH/USDT")
        await say(api, "/unban ETH/USDT", "may be traded again")
        assert office.store.bans(trader.label) == {}
        await say(api, "/buy SOL/USDT 50", "bought")
        assert "SOL/USDT" in trader.book.positions
        await say(api, "/sell sol", "sold")
        assert "SOL/USDT" not in trader.book.positions and rig.held("SOL/USDT") == 0
        await say(api, "/buy SOL/USDT 50 limit=0.01", "resting")
        await say(api, "/orders", "manual · buy")
        resting = trader.order_commands.orders().orders[-1].short_id
        await say(api, f"/cancelorder {resting}", "cancelled")
        await say(api, "/debug SOL/USDT", "<b>Debug SOL/USDT</b>")
        await say(api, "/locks", "paper:main")
        await say(api, "/roll", "live process")
        await say(api, "/version", "chatbot")
        await say(api, "/cancel", "Nothing to cancel")
        await say(api, "/logs 5", "")
        await say(api, "/unlock SOL/USDT", "SOL/USDT")
        await say(api, "/pause", "paused (was running)")
        assert trader.mode is Mode.PAUSED
        await say(api, "/unpause", "running again")
        await say(api, "/sync", "synced")
        await say(api, "/debug", "<b>Debug</b>")
        await say(api, "/ack", "Nothing to acknowledge")
        await say(api, "/record", "Recording")
        await say(api, "/trades", "SOL/USDT")
        await say(api, "/profit", "realized")
        await say(api, "/daily", "Daily profit")
        await say(api, "/weekly", "Weekly profit")
        await say(api, "/monthly", "Monthly profit")
        await say(api, "/performance", "SOL/USDT")
        await say(api, "/balance", "BTC")
        since = len(api.calls)
        api.queue_command(CHAT, OWNER, "/chart")
        photo = await api.wait_for_call("sendPhoto", since=since)
        assert "→" in photo.text and photo.files["photo"].startswith(b"\x89PNG")
        await say(api, "/stop now", "stopping: exiting 1 position(s)")
        assert trader.mode is Mode.STOPPING
        await say(api, "/kill now", "killed and flat")
        assert rig.held("BTC/USDT") == 0 and trader.mode is Mode.KILLED
        await say(api, "/resume", "running again (was killed)")
        await say(api, "/reset now", "started afresh with 10,000.00 USDT")
        await say(api, "/ping", "pong")
        await say(api, "/abort now", "Aborting")
        await api.wait_until(lambda: office.aborted, 2.0, "the process to be ended")
    assert {e.command for e in office.store.audit_log(100)} == {c.name for c in COMMANDS}


async def test_kill_confirm_button_round_trip_edits_the_message_to_the_outcome(api, office):
    await office.enter(office.rig, ["BTC/USDT", "ETH/USDT"])
    async with polling(api, office):
        ask = await say(api, "/kill", "Confirm /kill")
        keyboard = ask.params["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in keyboard] == ["Confirm", "Cancel"]
        assert office.rig.trader.mode is Mode.RUNNING  # nothing yet
        message_id = max(m for c, m in api.messages if c == CHAT)
        api.queue_callback(CHAT, OWNER, keyboard[0]["callback_data"], message_id=message_id)
        edit = await api.wait_for_call("editMessageText", lambda c: "killed and flat" in c.text)
        await api.wait_for_call("answerCallbackQuery")
    assert (edit.chat_id, edit.params["message_id"]) == (CHAT, message_id)
    assert "reply_markup" not in edit.params  # the buttons are gone
    assert office.rig.held("BTC/USDT") == office.rig.held("ETH/USDT") == 0
    assert office.rig.trader.mode is Mode.KILLED


async def test_cancel_button_edits_the_confirmation_to_cancelled(api, office):
    async with polling(api, office):
        ask = await say(api, "/stop", "Confirm /stop")
        data = ask.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
        api.queue_callback(CHAT, OWNER, data)
        await api.wait_for_call("editMessageText", lambda c: "Cancelled /stop" in c.text)
    assert office.rig.trader.mode is Mode.RUNNING
    assert office.store.audit_log()[0].result == "cancelled"


async def test_an_unpressed_confirmation_is_edited_to_expired_and_then_does_nothing(api, office):
    await office.enter(office.rig, ["BTC/USDT"])
    async with polling(api, office):
        ask = await say(api, "/kill", "Confirm /kill")
        data = ask.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        office.clock.advance(61)
        expired = await api.wait_for_call("editMessageText", lambda c: "Expired" in c.text)
        assert "/kill was not confirmed within 60 s. Nothing done." in expired.text
        since = len(api.calls)
        api.queue_callback(CHAT, OWNER, data)
        note = await api.wait_for_call("answerCallbackQuery", since=since)
    assert "no longer open" in note.params.get("text", "")
    assert len(api.calls_to("editMessageText")) == 1  # "expired" stays shown
    assert office.rig.trader.mode is Mode.RUNNING and office.rig.held("BTC/USDT") > 0
    assert office.store.audit_log()[0].result == "confirmation expired"


async def test_kill_now_acts_at_once_without_buttons(api, office):
    await office.enter(office.rig, ["BTC/USDT"])
    async with polling(api, office):
        reply = await say(api, "/kill now", "killed")
    assert "reply_markup" not in reply.params and "killed and flat" in reply.text
    assert office.rig.held("BTC/USDT") == 0


@pytest.mark.parametrize(
    ("line", "answer"),
    [("/ban NOPE/USDT", "Unknown symbol NOPE/USDT on every configured exchange"),
     ("/unban", "Which symbol?"),
     ("/buy SOL/USDT abc", "Malformed amount abc"),
     ("/buy SOL/USDT -5", "must be a positive number"),
     ("/sell BTC/USDT", "no position in BTC/USDT opened by the bot"),
     ("/pause nope", "No account nope. Known accounts: paper:main."),
     ("/kill nope", "No account nope"),
     ("/stop nope now", "No account nope"),
     ("/abort paper", "takes no account"),
     ("/info paper y", "Usage: /info [ACCOUNT]"),
     ("/chart 3x", "neither an account nor a period"),
     ("/unpause", "trader is running, not paused"),
     ("/resume", "already running"),
     ("/sync nope", "No account nope"),
     ("/bans nope", "No account nope"),
     ("/debug nope", "No account nope"),
     ("/ack all", "takes no arguments")],
)  # fmt: skip
async def test_bad_input_is_answered_and_changes_nothing(api, office, line, answer):
    async with polling(api, office):
        reply = await say(api, line, answer)
    assert "reply_markup" not in reply.params
    trader = office.rig.trader
    assert trader.mode is Mode.RUNNING and office.rig.created() == 0
    assert office.store.bans(trader.label) == {} and office.aborted == []


async def test_ping_answers_within_two_seconds_while_a_cycle_is_stuck(api):
    office = make_office(FakeClock(), venue=StallingPaper)
    await office.start()
    paper = office.rig.paper
    paper.gate = asyncio.Event()
    cycle = asyncio.create_task(office.rig.trader.run_cycle())
    await asyncio.wait_for(paper.stuck.wait(), 2.0)
    loop = asyncio.get_running_loop()
    try:
        async with polling(api, office):
            api.queue_command(CHAT, OWNER, "/sync")  # waits for the stuck cycle's lock
            asked = loop.time()
            await say(api, "/ping", "pong")
            assert loop.time() - asked < 2.0
            assert not api.sent_texts(CHAT)[:-1]  # /sync is still waiting
            paper.gate.set()
            await api.wait_for_message(CHAT, "synced", within=5.0)
            await asyncio.wait_for(cycle, 5.0)
    finally:
        paper.gate.set()
        await office.close()
    assert office.rig.trader.last_cycle_at is not None


async def test_a_long_reply_is_split_into_messages_telegram_accepts(api, office):
    for i in range(400):
        office.store.ban(office.rig.trader.label, f"COIN{i:03d}/USDT", "too volatile " * 3, 0.0)
    async with polling(api, office):
        api.queue_command(CHAT, OWNER, "/bans")
        await api.wait_for_message(CHAT, "COIN399/USDT")
    parts = api.calls_to("sendMessage", CHAT)
    assert len(parts) >= 3
    assert all(len(p.text.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    assert all(p.params["parse_mode"] == "HTML" for p in parts)
    joined = "\n".join(p.text for p in parts)
    assert all(f"COIN{i:03d}/USDT" in joined for i in range(400))


async def test_stop_polling_lets_a_running_command_answer_and_leaves_the_bot_open(api):
    office = make_office(FakeClock(), venue=StallingPaper)
    await office.start()
    paper = office.rig.paper
    paper.gate = asyncio.Event()
    cycle = asyncio.create_task(office.rig.trader.run_cycle())
    await asyncio.wait_for(paper.stuck.wait(), 2.0)
    transport = TelegramTransport(
        settings_for(api), office.dispatcher, clock=office.clock, poll_timeout=1.0, tick=0.05
    )
    try:
        await transport.start()
        update_id = api.queue_command(CHAT, OWNER, "/sync")["update_id"]  # waits for the cycle
        await api.wait_for_call("getUpdates", lambda c: c.params.get("offset", 0) > update_id)
        stopping = asyncio.create_task(transport.stop_polling())
        done, _ = await asyncio.wait({stopping}, timeout=0.2)
        assert not done and not transport.app.updater.running  # no new command; /sync runs
        paper.gate.set()
        await asyncio.wait_for(stopping, 5.0)
        assert "synced" in api.sent_texts(CHAT)[-1]  # answered before stop_polling returned
        await transport.bot.send_message(CHAT, "the notifier's last words")  # still open
        assert api.sent_texts(CHAT)[-1] == "the notifier's last words"
        await transport.shutdown()
        with pytest.raises(NetworkError, match="not initialized"):  # closed: nothing goes out
            await transport.bot.send_message(CHAT, "too late")
        await asyncio.wait_for(cycle, 5.0)
    finally:
        paper.gate.set()
        await transport.stop()
        await office.close()
    assert not transport.app.running and api.sent_texts(CHAT)[-1] != "too late"
