"""The results commands end to end: the real python-telegram-bot Application polling the
loopback fake Bot API, the real dispatcher, traders with a scripted history on paper."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from sim.fakes.telegram_api import FakeTelegramAPI
from tests.telegram_support import api_fixture, polling, say  # noqa: F401 (fixture)
from tests.test_results import trade_history
from trading.modes import Mode

# What Telegram's HTML parse mode accepts of what the handlers write.
TAGS = {"b", "i", "u", "s", "code", "pre"}


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        assert tag in TAGS, tag
        self.open.append(tag)

    def handle_endtag(self, tag) -> None:
        assert self.open and self.open.pop() == tag, tag


def assert_telegram_html(text: str) -> None:
    parser = _Balance()
    parser.feed(text)
    parser.close()
    assert not parser.open, text


@pytest.fixture
async def traded():
    o = await trade_history()
    yield o
    await o.close()


async def test_every_results_command_answers_in_the_owner_chat(api: FakeTelegramAPI, traded):
    answers = [
        ("/trades", "Last 3 closed trade(s)"),
        ("/trades kraken 1", "Last 1 closed trade(s)</b> · kraken:master"),
        ("/profit", "<b>Profit</b> · all time"),
        ("/profit paper 7", "<b>Profit</b> · the last 7 day(s)"),
        ("/daily", "<b>Daily profit</b> (UTC)"),
        ("/weekly 4", "<b>Weekly profit</b> (UTC)"),
        ("/monthly kraken:master 2", "<b>Monthly profit</b> (UTC) · kraken:master"),
        ("/performance", "<b>Performance</b> per symbol"),
        ("/balance", "bot's position"),
    ]
    async with polling(api, traded):
        for line, answer in answers:
            reply = await say(api, line, answer)
            assert reply.params["parse_mode"] == "HTML"
            assert_telegram_html(reply.text)
    assert {e.command for e in traded.store.audit_log(100)} == {
        "trades", "profit", "daily", "weekly", "monthly", "performance", "balance",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("line", "answer"),
    [("/trades 0", "must be from 1 to 50"),
     ("/profit lots", "lots is neither an account nor a number of days"),
     ("/daily 1000", "must be from 1 to 90, not 1000"),
     ("/weekly -1", "must be a whole number from 1 to 52"),
     ("/monthly nope 2", "No account nope"),
     ("/performance nope", "No account nope"),
     ("/balance kraken extra", "Usage: /balance [ACCOUNT]")],
)  # fmt: skip
async def test_bad_arguments_are_answered_and_change_nothing(api, traded, line, answer):
    before = len(traded.store.trades())
    async with polling(api, traded):
        reply = await say(api, line, answer)
    assert_telegram_html(reply.text)
    assert len(traded.store.trades()) == before
    assert [t.mode for t in traded.desk.traders] == [Mode.RUNNING, Mode.RUNNING]
