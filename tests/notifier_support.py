"""What the notifier tests share: events, and the notifier built on the loopback fakes
(python-telegram-bot's real Bot against the fake Bot API, the real ntfy and Pushover pagers
against their fake). Test modules import the fixtures by their function names."""

from __future__ import annotations

from dataclasses import fields

import httpx
import pytest

from chatbot.notifier import Notifier
from chatbot.pagers import NtfyPager, PushoverPager
from chatbot.senders import TelegramSender
from sim.clock import FakeClock
from sim.fakes.pager import FakePagers
from sim.fakes.telegram_api import FakeTelegramAPI
from trading.clock import RealClock
from trading.events import (
    Emergency,
    EquityReport,
    Event,
    TradeClosed,
    TradeOpened,
)

CHAT = 4242
ACC = "binance:master"
KEY = "kill:binance:master"


def closed(i: int = 0) -> TradeClosed:
    return TradeClosed(
        account=ACC,
        at=0.0,
        symbol=f"C{i}/USDT",
        amount=1.0,
        price=2.0,
        pnl=0.5,
        pnl_pct=1.0,
        reason="take profit",
    )


def opened(i: int = 0) -> TradeOpened:
    return TradeOpened(
        account=ACC, at=0.0, symbol=f"O{i}/USDT", amount=1.0, price=2.0, cost=2.0, reason="trend"
    )


def emergency(key: str = KEY, message: str = "kill not flat: 1 position left") -> Emergency:
    return Emergency(account=ACC, at=0.0, key=key, message=message)


def equity(value: float) -> EquityReport:
    return EquityReport(account=ACC, at=0.0, equity=value, exposure=0.2, quote="USDT", positions=2)


@pytest.fixture(name="api")
async def api_fixture():
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture(name="fake_pagers")
async def fake_pagers_fixture():
    async with FakePagers() as fake:
        yield fake


@pytest.fixture(name="client")
async def client_fixture():
    async with httpx.AsyncClient(timeout=5.0) as c:
        yield c


@pytest.fixture(name="bot")
async def bot_fixture(api):
    async with api.bot() as b:
        yield b


@pytest.fixture(name="clock")
def clock_fixture():
    return FakeClock()


@pytest.fixture(name="make")
def make_fixture(bot, fake_pagers, client, clock):
    """Build a notifier on the fakes: Telegram to CHAT, ntfy and Pushover pagers."""

    def build(*, interval: float = 1.0, real: bool = False, pagers: bool = True, **kwargs):
        use = RealClock() if real else clock
        sender = TelegramSender(bot, CHAT, use, interval=interval)
        pager_list = (
            [
                NtfyPager(fake_pagers.ntfy_url, "tk_test", client),
                PushoverPager(
                    fake_pagers.pushover_token,
                    fake_pagers.pushover_user,
                    client,
                    base_url=fake_pagers.pushover_base,
                ),
            ]
            if pagers
            else []
        )
        return Notifier([sender], pager_list, clock=use, **kwargs)

    return build


def vars_of(event: Event) -> dict[str, object]:
    return {f.name: getattr(event, f.name) for f in fields(event)}


def texts(api: FakeTelegramAPI) -> list[str]:
    return api.sent_texts(CHAT)
