"""Shared pieces for the Telegram tests: the real TelegramTransport (python-telegram-bot's
Application, polling) against the loopback fake Bot API, in front of paper accounts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from chatbot.config import Secret, TelegramSettings
from chatbot.telegram import TelegramTransport
from sim.clock import FakeClock
from sim.fakes.telegram_api import FakeTelegramAPI
from sim.fakes.telegram_calls import ApiCall
from tests.handlers_support import Office, make_office
from trading.venues.paper import PaperExchange

CHAT = 4242  # the owner chat
OWNER = 7
STRANGER = 999
OTHER_CHAT = 555


def settings_for(
    api: FakeTelegramAPI, *, chat_id: int | None = CHAT, allowed: frozenset[int] = frozenset()
) -> TelegramSettings:
    """What TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_ALLOWED_USER_IDS and
    TELEGRAM_API_BASE_URL would give for the fake."""
    return TelegramSettings(Secret(api.token), chat_id, allowed, api.base_url)


@contextlib.asynccontextmanager
async def polling(
    api: FakeTelegramAPI, office: Office, **options
) -> AsyncIterator[TelegramTransport]:
    """A started transport; PTB polls on real time, so every wait here is short."""
    allowed = options.pop("allowed", frozenset())
    options.setdefault("tick", 0.05)
    options.setdefault("poll_timeout", 1.0)
    options.setdefault("retry_backoff", 0.05)
    transport = TelegramTransport(
        settings_for(api, allowed=allowed), office.dispatcher, clock=office.clock, **options
    )
    await transport.start()
    try:
        yield transport
    finally:
        await transport.stop()


async def say(api: FakeTelegramAPI, text: str, match: str, *, user: int = OWNER) -> ApiCall:
    """Send a command from the owner chat; the bot's reply that contains `match`."""
    since = len(api.calls)
    api.queue_command(CHAT, user, text)
    return await api.wait_for_message(CHAT, match, since=since)


class StallingPaper(PaperExchange):
    """A paper exchange whose balance call can be held until the test releases it: a cycle
    stuck on a slow exchange call, without any real or simulated sleep."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gate: asyncio.Event | None = None
        self.stuck = asyncio.Event()

    async def fetch_balance(self):
        if self.gate is not None:
            self.stuck.set()
            await self.gate.wait()
        return await super().fetch_balance()


@pytest.fixture(name="api")
async def api_fixture() -> AsyncIterator[FakeTelegramAPI]:
    """The loopback fake Bot API (import this into a test module to use `api`)."""
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture(name="office")
async def office_holding_btc() -> AsyncIterator[Office]:
    """A paper account already holding BTC/USDT (import this to use `office`)."""
    o = make_office(FakeClock())
    await o.start()
    await o.enter(o.rig, ["BTC/USDT"])
    yield o
    await o.close()
