"""Senders against a loopback fake Telegram Bot API, with python-telegram-bot's real Bot.

Time is a FakeClock: pacing and flood waits advance it instead of sleeping, so the tests can
assert the exact waits."""

from __future__ import annotations

import io

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, NetworkError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from chatbot.senders import (
    ConsoleSender,
    Message,
    SendDeferred,
    TelegramSender,
    html_to_text,
    split_text,
    utf16_len,
)
from sim.clock import FakeClock
from sim.fakes.telegram_api import FakeTelegramAPI

CHAT = 4242
GROUP = -1001234


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def bot(api):
    async with api.bot() as b:
        yield b


# ---- splitting ---------------------------------------------------------------------------


def test_split_keeps_lines_whole_and_every_part_within_the_limit():
    lines = [f"<b>line {i}</b> " + "x" * (i % 90) for i in range(400)]
    text = "\n".join(lines)
    parts = split_text(text, 4096)
    assert len(parts) > 1
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text  # nothing lost, nothing cut inside a line


def test_split_cuts_an_overlong_line_outside_tags_and_entities():
    line = ("abc &amp; <b>bold</b> " * 400).strip()
    parts = split_text(line, 100)
    assert "".join(parts) == line
    for part in parts:
        assert utf16_len(part) <= 100
        assert part.count("<") == part.count(">")  # no tag cut in half
        assert not part.rstrip().endswith(("&", "&amp"))


def test_split_counts_emoji_as_two_telegram_characters():
    text = "🚨" * 3000  # 6,000 UTF-16 units
    parts = split_text(text, 4096)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


# ---- Telegram -----------------------------------------------------------------------------


async def test_message_goes_out_as_html_with_sound_unless_silent(api, bot):
    sender = TelegramSender(bot, CHAT, FakeClock())
    await sender.send(Message("<b>Sold</b> BTC &amp; more"))
    await sender.send(Message("quiet one", silent=True))
    loud, quiet = api.calls_to("sendMessage", CHAT)
    assert loud.params["parse_mode"] == "HTML"
    assert loud.text == "<b>Sold</b> BTC &amp; more"
    assert loud.params["disable_notification"] is False
    assert quiet.params["disable_notification"] is True


async def test_long_text_arrives_as_ordered_parts_within_telegram_limit(api, bot):
    clock = FakeClock()
    sender = TelegramSender(bot, CHAT, clock)
    text = "\n".join(f"position {i}: " + "y" * 60 for i in range(200))  # ~15,000 chars
    await sender.send(Message(text))
    texts = api.sent_texts(CHAT)
    assert len(texts) == 4
    assert all(len(t) <= 4096 for t in texts)
    assert "\n".join(texts) == text
    assert clock.monotonic() == pytest.approx(3.0)  # paced: one message per second


async def test_retry_after_defers_with_telegram_wait_and_the_next_send_waits_exactly(api, bot):
    clock = FakeClock()
    sender = TelegramSender(bot, CHAT, clock)
    api.fail_next("sendMessage", status=429, json=api.flood(17))
    with pytest.raises(SendDeferred) as deferred:
        await sender.send(Message("first"))
    assert deferred.value.wait == 17
    assert clock.monotonic() == 0  # the sender did not sit on the wait itself
    await sender.send(Message("second"))
    assert clock.monotonic() == pytest.approx(17.0)
    assert api.sent_texts(CHAT) == ["second"]


async def test_retry_after_in_the_middle_of_a_split_text_waits_and_keeps_the_parts_together(
    api, bot
):
    clock = FakeClock()
    sender = TelegramSender(bot, CHAT, clock)
    first_half = "\n".join("a" * 100 for _ in range(40))
    second_half = "\n".join("b" * 100 for _ in range(40))
    api.fail_next("sendMessage", status=429, json=api.flood(9), after=1)  # the second part
    await sender.send(Message(first_half + "\n" + second_half))
    assert api.sent_texts(CHAT) == [first_half, second_half]
    assert clock.monotonic() == pytest.approx(1.0 + 9.0)  # pacing, then exactly the flood wait


async def test_network_errors_are_retried_a_bounded_number_of_times(api, bot):
    clock = FakeClock()
    sender = TelegramSender(bot, CHAT, clock, network_attempts=3, network_backoff=1.0)
    api.fail_next("sendMessage", 3, status=502, json=api.error(502, "Bad Gateway"))
    with pytest.raises(NetworkError):
        await sender.send(Message("lost"))
    assert len(api.calls_to("sendMessage", ok=False)) == 3
    assert clock.monotonic() == pytest.approx(1.0 + 2.0)  # backoff 1 s, 2 s


async def test_a_dropped_connection_is_retried_and_the_message_delivered(api, bot):
    sender = TelegramSender(bot, CHAT, FakeClock())
    api.drop_next("sendMessage")
    await sender.send(Message("persistent"))
    assert api.sent_texts(CHAT) == ["persistent"]


async def test_html_telegram_cannot_parse_is_resent_as_plain_text(api, bot):
    sender = TelegramSender(bot, CHAT, FakeClock())
    api.fail_next(
        "sendMessage",
        status=400,
        json=api.error(400, "Bad Request: can't parse entities: unsupported start tag"),
    )
    await sender.send(Message("<blink>Kill</blink> not flat &amp; retrying"))
    (delivered,) = api.calls_to("sendMessage", CHAT)
    assert delivered.text == "Kill not flat & retrying"
    assert "parse_mode" not in delivered.params


async def test_forbidden_is_raised_to_the_caller_not_retried(api, bot):
    sender = TelegramSender(bot, CHAT, FakeClock())
    api.fail_next(
        "sendMessage", status=403, json=api.error(403, "Forbidden: bot was blocked by the user")
    )
    with pytest.raises(Forbidden):
        await sender.send(Message("blocked"))
    assert len(api.calls_to("sendMessage", ok=None)) == 1


async def test_private_chat_is_paced_to_one_message_per_second(api, bot):
    clock = FakeClock()
    sender = TelegramSender(bot, CHAT, clock)
    stamps = []
    for i in range(5):
        await sender.send(Message(f"m{i}"))
        stamps.append(clock.monotonic())
    assert stamps == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


async def test_group_chat_is_held_to_twenty_messages_a_minute(api, bot):
    clock = FakeClock()
    sender = TelegramSender(bot, GROUP, clock)
    stamps = []
    for i in range(22):
        await sender.send(Message(f"m{i}"))
        stamps.append(clock.monotonic())
    assert stamps[19] == pytest.approx(19.0)
    assert stamps[20] == pytest.approx(60.0)  # the 21st waits for the first to leave the window
    assert stamps[21] == pytest.approx(61.0)
    assert len(api.sent_texts(GROUP)) == 22


async def test_photo_goes_with_a_caption_and_the_rest_of_a_long_text_follows(api, bot):
    sender = TelegramSender(bot, CHAT, FakeClock())
    text = "\n".join(f"line {i} " + "z" * 50 for i in range(40))  # > 1,024
    await sender.send(Message(text, photo=b"\x89PNG not really"))
    (photo,) = api.calls_to("sendPhoto", CHAT)
    assert photo.files["photo"] == b"\x89PNG not really"
    assert len(photo.params["caption"]) <= 1024
    rest = api.calls_to("sendMessage", CHAT)
    assert photo.params["caption"] + "\n" + "\n".join(c.text for c in rest) == text


# ---- console ------------------------------------------------------------------------------


async def test_console_prints_one_plain_line_per_message():
    out = io.StringIO()
    sender = ConsoleSender(out)
    await sender.send(Message("<b>Sold</b> 1 BTC\n<i>take profit</i> &amp; done"))
    await sender.send(Message("🚨 <b>EMERGENCY</b>\nkill not flat", emergency=True))
    await sender.send(Message("entry", silent=True))
    assert out.getvalue().splitlines() == [
        "[note] Sold 1 BTC | take profit & done",
        "[ALERT] 🚨 EMERGENCY | kill not flat",
        "[quiet] entry",
    ]


def test_html_to_text_unescapes_and_drops_tags():
    assert html_to_text("<b>a &lt;b&gt;</b> &amp; <code>c</code>") == "a <b> & c"


# ---- the fake API serves python-telegram-bot's Application (for the command layer) --------


async def _status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Confirm", callback_data="confirm")]])
    await update.effective_message.reply_text(f"running: {context.args}", reply_markup=markup)


async def _confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer("done")
    await update.callback_query.edit_message_text(f"confirmed by {update.effective_user.id}")


async def test_fake_api_serves_commands_and_button_presses_to_a_polling_application(api):
    app = Application.builder().token(api.token).base_url(api.base_url).build()
    app.add_handler(CommandHandler("status", _status))
    app.add_handler(CallbackQueryHandler(_confirm))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            api.queue_command(CHAT, 7, "/status now")
            reply = await api.wait_for_message(CHAT, "running: ['now']")
            assert reply.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
                "confirm"
            )
            api.queue_callback(CHAT, 7, "confirm")
            edit = await api.wait_for_call("editMessageText")
            assert edit.text == "confirmed by 7"
            # The edit targets the message that carried the button.
            assert (edit.chat_id, edit.params["message_id"]) == max(api.messages)
            await api.wait_for_call("answerCallbackQuery")
        finally:
            await app.updater.stop()
            await app.stop()
    assert api.calls[0].method == "getMe"
    assert api.calls_to("deleteWebhook")


async def test_a_group_upgraded_to_a_supergroup_is_followed(api, bot):
    sender = TelegramSender(bot, GROUP, FakeClock())
    upgraded = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -100999},
    }
    api.fail_next("sendMessage", status=400, json=upgraded)
    await sender.send(Message("still reaching you"))
    assert api.sent_texts(-100999) == ["still reaching you"]
    assert sender.chat_id == -100999
