"""/reset and PAPER_RESET: a paper or dry-run account started afresh on purpose, through the real
Dispatcher, handlers, Trader and the paper exchange kept under DATA_DIR; the bot's own book of it
is cleared with it, so nothing is "sold outside the bot". A live account is refused."""

from __future__ import annotations

import asyncio
import functools
import io
import logging

import pytest

from chatbot.app import build, serve
from chatbot.config import load_settings
from chatbot.venues import build_venues
from handlers.context import Context
from handlers.dispatch import Dispatcher
from handlers.reply import plain
from sim.clock import FakeClock
from sim.fakes.binance import ORDER, FakeBinance
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from tests.handlers_support import make_office
from trading.connector import Connector
from trading.desk import Desk
from trading.engine import Trader
from trading.events import TradeClosed
from trading.models import OrderRequest, OrderType, Side
from trading.modes import Purpose
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.paper import PaperExchange
from trading.venues.paper_state import PaperState, state_path

ETH, SOL = "ETH/USDT", "SOL/USDT"
LABEL = "paper:main"


@pytest.fixture
async def office(tmp_path):
    """paper:main, kept on disk, holding ETH and SOL, and a resting limit buy of the bot's."""
    o = make_office(FakeClock(), venue=functools.partial(PaperExchange, state=_state(tmp_path)))
    await o.start()
    await o.enter(o.rig, [ETH, SOL])
    book, paper = o.rig.trader.book, o.rig.paper
    price = round(paper.price("BNB/USDT") / 2, 2)
    cid = book.new_client_id(Purpose.ENTRY)
    request = OrderRequest("BNB/USDT", Side.BUY, OrderType.LIMIT, 0.1, cid, price=price)
    book.placed(book.pending(request, Purpose.ENTRY), await paper.create_order(request))
    yield o
    await o.close()
    await o.rig.paper.close()


async def test_reset_asks_first_naming_what_is_dropped_and_cancel_changes_nothing(office):
    held = dict(office.rig.trader.book.positions)

    ask = await office.run("/reset")

    assert ask.buttons and "Confirm /reset" in ask.text
    assert "ETH/USDT, SOL/USDT" in ask.text and "dropped, not sold" in ask.text
    assert "back to 10,000.00 USDT" in ask.text
    cancelled = await office.dispatcher.press(ask.buttons[1].data, "tester")
    assert "nothing done" in cancelled.text
    assert office.rig.trader.book.positions == held


async def test_confirmed_reset_starts_afresh_and_clears_the_book_without_a_trade(office, tmp_path):
    rig = office.rig
    open_before = len(rig.open_orders())

    reply = await office.confirm("/reset")

    text = plain(reply.text)
    assert reply.ok and "paper:main: started afresh with 10,000.00 USDT" in text
    # one open limit order and the two positions' stops resting at the exchange
    assert "dropped from the bot's book, not sold: 2 position(s), 3 open order(s)" in text
    assert "• ETH/USDT" in text and "• SOL/USDT" in text
    assert open_before == 1 and rig.open_orders() == []
    assert rig.paper.peek_balance().total == {"USDT": 10_000.0}
    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}
    assert office.store.positions(LABEL) == [] and office.store.orders(LABEL, open_only=True) == []
    assert rig.trader.balance.total == {"USDT": 10_000.0}
    await rig.cycles(2)  # the following syncs find nothing missing: nothing "sold"
    assert office.store.trades(LABEL) == [] and rig.of(TradeClosed) == []
    # ... and a restart on the file finds the fresh account.
    await rig.paper.close()
    again = PaperExchange(clock=office.clock, markets=12, state=_state(tmp_path))
    assert again.order_log == [] and again.peek_balance().total == {"USDT": 10_000.0}
    await again.close()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("/reset nope", "No account nope. Known accounts: paper:main."),
        ("/reset paper extra", "Too many arguments. Usage: /reset [ACCOUNT] [now]"),
    ],
)
async def test_a_bad_argument_is_refused_at_once_and_changes_nothing(office, line, why):
    held = dict(office.rig.trader.book.positions)
    balance = office.rig.paper.peek_balance()

    reply = await office.run(line)

    assert not reply.ok and not reply.buttons and plain(reply.text).endswith(why)
    assert office.rig.trader.book.positions == held and office.rig.paper.peek_balance() == balance


async def test_a_live_account_is_refused_and_left_untouched():
    clock = FakeClock()
    async with FakeBinance(balances={"USDT": 1_000.0}) as fake:
        venue = CcxtVenue(
            "binance", "MASTER", api_key=fake.api_key, secret=fake.secret,
            config=fake.ccxt_config(),
        )  # fmt: skip
        store = Store()
        live = Trader(
            Connector(venue, clock=clock, notify=lambda e: None),
            store=store,
            strategy=ScriptedStrategy(),
            settings=SETTINGS,
            clock=clock,
            notify=lambda e: None,
        )
        paper = make_rig(clock, store=store).trader
        desk = Desk([paper, live], store=store, clock=clock)
        dispatcher = Dispatcher(Context(desk=desk, clock=clock))
        requests = len(fake.requests)

        named = await dispatcher.handle("/reset binance", "tester")
        assert not named.ok and not named.buttons
        assert "only a paper or dry-run account can be reset" in named.text

        both = await dispatcher.handle("/reset now", "tester")
        text = plain(both.text)
        assert "paper:main: started afresh" in text
        assert "binance:master: only a paper or dry-run account can be reset" in text
        assert fake.calls(ORDER) == 0 and len(fake.requests) == requests
        await venue.close()
        store.close()


# ---------------------------------------------------------------- at start


def _path(tmp_path):
    return state_path(tmp_path, "paper", "MAIN")


def _state(tmp_path) -> PaperState:
    return PaperState(_path(tmp_path))


async def _held_on_paper(tmp_path) -> None:
    """An earlier process bought ETH on the app's paper account and remembered it; ETH is
    banned, so no strategy exit of the next process sells it."""
    clock = FakeClock()
    settings = load_settings({"DATA_DIR": str(tmp_path), "PAPER_MARKETS": "12"})
    [venue] = build_venues(settings, paper_clock=clock)
    rig = make_rig(clock, store=Store.in_dir(tmp_path), paper=venue)
    await rig.trader.start()
    assert (await rig.trader.buy(ETH, 100.0)).ok
    assert (await rig.trader.ban(ETH)).ok
    rig.store.close()
    await venue.close()


async def _serve_one_cycle(tmp_path, **env: str):
    """The app on the same DATA_DIR until its first cycle; its trader and venue."""
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "HEALTH_PORT": "off", "PAPER_MARKETS": "12",
         "MIN_QUOTE_VOLUME": "1e15", **env}
    )  # fmt: skip
    bot = build(settings, build_venues(settings), out=io.StringIO())
    serving = asyncio.create_task(serve(bot, inp=io.StringIO()))
    [trader] = bot.traders
    for _ in range(500):
        if trader.last_cycle_at is not None:
            break
        await asyncio.sleep(0.02)
    bot.request_stop()
    assert await asyncio.wait_for(serving, 30) == 0
    store = Store.in_dir(tmp_path)
    try:
        return store.positions(LABEL), store.trades(LABEL), trader.balance
    finally:
        store.close()


async def test_paper_reset_at_start_drops_the_remembered_position_without_a_trade(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    await _held_on_paper(tmp_path)

    positions, trades, balance = await _serve_one_cycle(tmp_path, PAPER_RESET="true")

    assert positions == [] and trades == [] and balance.total == {"USDT": 10_000.0}
    assert any(
        "paper:main: PAPER_RESET=true: started afresh" in r.getMessage()
        and "dropped 1 position(s)" in r.getMessage()
        for r in caplog.records
    )


async def test_a_lost_paper_file_drops_the_remembered_position_instead_of_selling_it(
    tmp_path, caplog
):
    caplog.set_level(logging.WARNING)
    await _held_on_paper(tmp_path)
    _path(tmp_path).unlink()

    positions, trades, _ = await _serve_one_cycle(tmp_path)

    assert positions == [] and trades == []
    assert any("no saved paper account: started afresh" in r.getMessage() for r in caplog.records)


async def test_without_reset_the_app_continues_the_saved_account(tmp_path):
    await _held_on_paper(tmp_path)

    positions, trades, balance = await _serve_one_cycle(tmp_path)

    assert [p.symbol for p in positions] == [ETH] and trades == []
    assert balance.total_of("ETH") == positions[0].amount


async def test_an_unreadable_paper_file_refuses_to_start_naming_it(tmp_path, caplog):
    from chatbot.app import run

    _path(tmp_path).parent.mkdir(parents=True)
    _path(tmp_path).write_bytes(b"garbage")
    settings = load_settings({"DATA_DIR": str(tmp_path), "HEALTH_PORT": "off"})

    assert await run(settings, inp=io.StringIO(), out=io.StringIO()) == 2

    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert str(_path(tmp_path)) in error and "PAPER_RESET=true" in error
    assert _path(tmp_path).read_bytes() == b"garbage"
