"""The whole process, as `python -m chatbot` runs it with a bot token: configuration, paper
account, notifier, real python-telegram-bot against the loopback fake Bot API."""

from __future__ import annotations

import asyncio

import pytest

from chatbot.app import run
from chatbot.config import load_settings
from sim.fakes.telegram_api import FakeTelegramAPI

CHAT, OWNER = 4242, 7


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as fake:
        yield fake


def settings(api: FakeTelegramAPI, tmp_path, **extra: str):
    return load_settings(
        {
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_CHAT_ID": str(CHAT),
            "TELEGRAM_API_BASE_URL": api.base_url,
            "DATA_DIR": str(tmp_path),
            "HEALTH_PORT": "off",
            **extra,
        }
    )


async def test_bot_answers_on_telegram_publishes_its_menu_and_ends_on_abort(api, tmp_path):
    bot = asyncio.create_task(run(settings(api, tmp_path)))
    try:
        await api.wait_for_call("setMyCommands", within=20)
        menu = {c["command"] for c in api.commands}
        assert {"ping", "info", "kill", "pause", "ack"} <= menu

        api.queue_command(CHAT, OWNER, "/ping")
        assert "pong" in (await api.wait_for_message(CHAT, "pong", within=20)).text

        since = len(api.calls)
        api.queue_command(CHAT, OWNER, "/abort now")
        reply = await api.wait_for_message(CHAT, "paper:main", since=since, within=20)
        assert "abort" in reply.text.lower()
        assert await asyncio.wait_for(bot, 30) == 0
    finally:
        bot.cancel()


async def test_a_refused_token_means_no_trading_and_exit_1(api, tmp_path):
    api.fail_next("getMe", 5, status=401, json=api.error(401, "Unauthorized"))
    assert await asyncio.wait_for(run(settings(api, tmp_path)), 30) == 1
    assert not api.calls_to("setMyCommands")
