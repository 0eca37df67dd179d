"""Shutting the process down without losing its last words: the parts chatbot.app.build()
wires, the real python-telegram-bot Bot shared by the transport and the notifier, the loopback
fake Bot API. The order under test is chatbot.app's own _shutdown:

    telegram.stop_polling() -> notifier.stop() (flushes through the shared Bot) -> .shutdown()

Closing the transport first (telegram.stop(), which closes the Bot) lost both messages below.
"""

from __future__ import annotations

import contextlib

import pytest

from chatbot.app import _shutdown, build
from chatbot.config import load_settings
from chatbot.front_host import CommandFront
from chatbot.scheduling import new_scheduler
from chatbot.telegram import TelegramTransport
from chatbot.venues import build_venues
from sim.fakes.telegram_api import FakeTelegramAPI
from trading.events import Emergency

CHAT, OWNER = 4242, 7


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture(params=["own process", "on the loop"])
async def bot(request, api, tmp_path):
    settings = load_settings(
        {
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_CHAT_ID": str(CHAT),
            "TELEGRAM_API_BASE_URL": api.base_url,
            "DATA_DIR": str(tmp_path),
            "HEALTH_PORT": "off",
            "TELEGRAM_OWN_PROCESS": str(request.param == "own process").lower(),
        }
    )
    built = build(settings, build_venues(settings))
    yield built
    with contextlib.suppress(Exception):  # after a failed test; a no-op after _shutdown
        await _shutdown(built, new_scheduler(), [])


async def test_queued_emergency_and_report_reach_telegram_before_the_bot_closes(api, bot):
    telegram = bot.telegram
    assert telegram is not None
    await telegram.start()
    # Queued, not sent: the notifier's sender task is not running (as when a flood wait held
    # the lane when SIGTERM came).
    bot.notifier.notify(
        Emergency(account="paper:main", at=bot.clock.time(), key="fatal:x", message="exit failed")
    )
    bot.notifier.report("🚨 last words before SIGTERM")

    await _shutdown(bot, new_scheduler(), [])
    assert not polling(telegram)

    texts = api.sent_texts(CHAT)
    assert any("exit failed" in t for t in texts), texts
    assert any("last words before SIGTERM" in t for t in texts), texts
    assert bot.notifier.stats().sent >= 2


async def test_a_command_answered_during_stop_polling_then_the_notifier_flushes(api, bot):
    telegram = bot.telegram
    assert telegram is not None
    await telegram.start()
    api.queue_command(CHAT, OWNER, "/ping")
    await api.wait_for_message(CHAT, "pong")
    bot.notifier.report("bot stopping")

    await _shutdown(bot, new_scheduler(), [])

    assert api.sent_texts(CHAT)[-1] == "bot stopping"
    assert not polling(telegram)


def polling(telegram: CommandFront | TelegramTransport) -> bool:
    if isinstance(telegram, CommandFront):
        return telegram.process is not None and telegram.process.returncode is None
    return telegram.app.updater.running or telegram.app.running
