"""The process's life on the real wiring (chatbot.app.build + serve): each trader's state is
restored before any command can arrive, and ending the process (SIGTERM, /abort) is never a
fault: what was in flight finishes or is cancelled, nothing is sold, nothing pages, the mode on
disk stays, and the next start on the same DATA_DIR sells nothing either.

The exchange is the paper exchange on real time with injected latency, or the real ccxt binance
client against the loopback fake whose account endpoint can hang. `request_stop()` is what the
SIGTERM handler calls. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from chatbot.app import Bot, build, serve
from chatbot.config import load_settings
from sim.fakes.binance import ACCOUNT, FakeBinance
from sim.fakes.telegram_api import FakeTelegramAPI
from sim.faults import FaultyPaper
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.clock import RealClock
from trading.connector import Connector
from trading.engine import Trader
from trading.models import OrderStatus, Position, Side
from trading.modes import Mode
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue

CHAT, OWNER = 4242, 7
PAPER_LABEL = "paper:main"
# No market passes the volume screen: the bot under test never enters, so every order at the
# venue is the position's exit or the shutdown's doing.
NO_ENTRIES = {"MIN_QUOTE_VOLUME": "1e15"}


def _settings(tmp_path, **extra: str):
    return load_settings({"DATA_DIR": str(tmp_path), "HEALTH_PORT": "off", **NO_ENTRIES, **extra})


async def _until(predicate, what: str, within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


async def _hold_on_paper(
    tmp_path, paper: FaultyPaper, *, stop: float = 0.05, ban: bool = False
) -> Position:
    """An earlier process bought ETH/USDT on `paper` and remembered it in DATA_DIR. A banned
    symbol's position is left alone by the cycle (no strategy exit can sell it)."""
    strategy = ScriptedStrategy(["ETH/USDT"], stop=stop)
    rig = make_rig(RealClock(), strategy=strategy, store=Store.in_dir(tmp_path), paper=paper)
    await rig.trader.start()
    await rig.trader.run_cycle()
    if ban:
        assert (await rig.trader.ban("ETH/USDT")).ok
    position = rig.trader.book.positions["ETH/USDT"]
    rig.store.close()
    return position


def _sells(paper: FaultyPaper) -> list:
    """Sells that sold something, or exits the bot sent (not the stops resting to guard)."""
    return [o for o in paper.order_log if o.side is Side.SELL and (o.filled or not o.type.is_stop)]


def _sent(fake) -> list[str]:
    """The sides of the orders the fake Binance took, but for resting stops."""
    return [o["side"] for o in fake.orders.values() if not o["type"].startswith("STOP_LOSS")]


def _assert_nothing_alarming(bot: Bot, caplog) -> None:
    stats = bot.notifier.stats()
    assert stats.emergencies_raised == 0
    assert "StateChanged" not in stats.day_counts and "Emergency" not in stats.day_counts
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def _remembered(tmp_path, label: str) -> tuple[str | None, list[str]]:
    """The mode and the positions on disk."""
    store = Store.in_dir(tmp_path)
    try:
        return store.mode(label), [p.symbol for p in store.positions(label)]
    finally:
        store.close()


async def _one_cycle_then_stop(bot: Bot) -> Trader:
    """A restart: serve until the first cycle (the exchange start) is done, then stop."""
    serving = asyncio.create_task(serve(bot, inp=io.StringIO()))
    [trader] = bot.traders
    await _until(lambda: trader.started and trader.last_cycle_at is not None, "the first cycle")
    bot.request_stop()
    assert await asyncio.wait_for(serving, 30) == 0
    return trader


# ---------------------------------------------------------------- a clean shutdown


async def test_sigterm_while_the_exchange_hangs_sells_nothing_now_or_after_the_restart(
    tmp_path, caplog
):
    paper = FaultyPaper(clock=RealClock(), markets=12)
    held = await _hold_on_paper(tmp_path, paper, ban=True)
    settings = _settings(tmp_path)
    bot = build(settings, [paper], out=io.StringIO())
    reads = paper.calls["fetch_balance"]
    paper.inject_latency("fetch_balance", 3600.0)  # the start's sync never gets an answer
    serving = asyncio.create_task(serve(bot, inp=io.StringIO(), grace=0.2))
    await _until(lambda: paper.calls["fetch_balance"] > reads, "the cycle to wait on the exchange")

    bot.request_stop()

    assert await asyncio.wait_for(serving, 30) == 0
    _assert_nothing_alarming(bot, caplog)
    assert _sells(paper) == [] and paper.peek_balance().total["ETH"] == held.amount
    assert _remembered(tmp_path, PAPER_LABEL) == (None, ["ETH/USDT"])  # never left running

    trader = await _one_cycle_then_stop(build(settings, [paper], out=io.StringIO()))
    assert trader.mode is Mode.RUNNING and list(trader.book.positions) == ["ETH/USDT"]
    assert _sells(paper) == []


async def test_sigterm_lets_the_stop_loss_exit_on_its_way_finish_and_records_it(tmp_path):
    paper = FaultyPaper(clock=RealClock(), markets=12)
    await _hold_on_paper(tmp_path, paper, stop=-0.5)  # its stop-loss is above the price
    bot = build(_settings(tmp_path), [paper], out=io.StringIO())
    paper.inject_latency("create_order", 0.5)  # the exit takes a while to be answered
    sent = paper.calls["create_order"]  # the entry (and its stop, refused: above the price)
    serving = asyncio.create_task(serve(bot, inp=io.StringIO()))
    await _until(lambda: paper.calls["create_order"] > sent, "the stop-loss exit to be sent")

    bot.request_stop()

    assert await asyncio.wait_for(serving, 30) == 0
    [sold] = _sells(paper)
    assert sold.status is OrderStatus.CLOSED
    store = Store.in_dir(tmp_path)
    try:
        assert store.positions(PAPER_LABEL) == []
        assert store.orders(PAPER_LABEL, open_only=True) == []  # no outcome left unknown
        [trade] = store.trades(PAPER_LABEL)
        assert trade.reason == "stop-loss"
    finally:
        store.close()


async def test_sigterm_while_binance_hangs_on_the_account_sells_nothing_and_pages_nobody(
    tmp_path, caplog
):
    async with FakeBinance(balances={"USDT": 10_000.0}) as fake:

        def venue() -> CcxtVenue:
            return CcxtVenue(
                "binance", "MASTER", api_key=fake.api_key, secret=fake.secret,
                config=fake.ccxt_config(),
            )  # fmt: skip

        first, store = venue(), Store.in_dir(tmp_path)
        trader = Trader(
            Connector(first, clock=RealClock(), notify=lambda e: None),
            store=store,
            strategy=ScriptedStrategy(),
            settings=SETTINGS,
            clock=RealClock(),
            notify=lambda e: None,
        )
        await trader.start()
        assert (await trader.buy("ETH/USDT", 100.0)).ok
        assert (await trader.ban("ETH/USDT")).ok  # no strategy exit: any sell is the shutdown's
        await first.close()
        store.close()
        settings = _settings(tmp_path)
        bot = build(settings, [venue()], out=io.StringIO())
        fake.stall(ACCOUNT)
        try:
            serving = asyncio.create_task(serve(bot, inp=io.StringIO(), grace=0.2))
            await _until(lambda: fake.parked.get(ACCOUNT), "the start's sync to hang at Binance")

            bot.request_stop()

            assert await asyncio.wait_for(serving, 30) == 0
        finally:
            fake.release(ACCOUNT)
        _assert_nothing_alarming(bot, caplog)
        assert _sent(fake) == ["BUY"]  # the buy (and its resting stop), nothing since
        assert _remembered(tmp_path, "binance:master") == (None, ["ETH/USDT"])

        again = await _one_cycle_then_stop(build(settings, [venue()], out=io.StringIO()))
        assert again.mode is Mode.RUNNING and list(again.book.positions) == ["ETH/USDT"]
        assert _sent(fake) == ["BUY"]


async def test_abort_during_a_hung_cycle_answers_at_once_and_sells_nothing(tmp_path, caplog):
    paper = FaultyPaper(clock=RealClock(), markets=12)
    held = await _hold_on_paper(tmp_path, paper, ban=True)
    async with FakeTelegramAPI() as api:
        settings = _settings(
            tmp_path,
            TELEGRAM_BOT_TOKEN=api.token,
            TELEGRAM_CHAT_ID=str(CHAT),
            TELEGRAM_API_BASE_URL=api.base_url,
        )
        bot = build(settings, [paper])
        reads = paper.calls["fetch_balance"]
        paper.inject_latency("fetch_balance", 3600.0)
        serving = asyncio.create_task(serve(bot))
        await _until(lambda: paper.calls["fetch_balance"] > reads, "the cycle to hang")

        api.queue_command(CHAT, OWNER, "/abort now")

        reply = await api.wait_for_message(CHAT, "Aborting")
        assert "ETH/USDT" in reply.text  # the restored position, left open
        assert await asyncio.wait_for(serving, 30) == 0
    _assert_nothing_alarming(bot, caplog)
    assert _sells(paper) == [] and paper.peek_balance().total["ETH"] == held.amount
    assert _remembered(tmp_path, PAPER_LABEL) == (None, ["ETH/USDT"])

    trader = await _one_cycle_then_stop(build(_settings(tmp_path), [paper], out=io.StringIO()))
    assert trader.mode is Mode.RUNNING and _sells(paper) == []


# ------------------------------------------------------- restored before any command


async def test_a_stop_waiting_in_telegram_at_start_exits_the_restored_position(tmp_path):
    paper = FaultyPaper(clock=RealClock(), markets=12)
    await _hold_on_paper(tmp_path, paper)
    # The first cycle pauses in its scan, so the command acts before any strategy exit could.
    paper.inject_latency("fetch_tickers", 0.3)
    async with FakeTelegramAPI() as api:
        settings = _settings(
            tmp_path,
            TELEGRAM_BOT_TOKEN=api.token,
            TELEGRAM_CHAT_ID=str(CHAT),
            TELEGRAM_API_BASE_URL=api.base_url,
        )
        api.queue_command(CHAT, OWNER, "/stop now")  # sent while the bot was down
        bot = build(settings, [paper])
        serving = asyncio.create_task(serve(bot))
        try:
            reply = await api.wait_for_message(CHAT, "⏹")
        finally:
            bot.request_stop()
            await asyncio.wait_for(serving, 30)

    assert "exiting 1 position(s)" in reply.text
    [exit_order] = _sells(paper)
    assert exit_order.symbol == "ETH/USDT" and exit_order.is_open  # a limit at the touch
    assert _remembered(tmp_path, PAPER_LABEL) == ("stopping", ["ETH/USDT"])


async def test_a_kill_queued_before_the_start_sells_the_restored_position(tmp_path):
    paper = FaultyPaper(clock=RealClock(), markets=12)
    held = await _hold_on_paper(tmp_path, paper)
    paper.inject_latency("fetch_tickers", 0.3)
    commands = tmp_path / "commands.txt"
    commands.write_text("/kill now\n")  # read by the console at once, before the first cycle
    out = io.StringIO()
    bot = build(_settings(tmp_path), [paper], out=out)

    with commands.open() as inp:
        assert await asyncio.wait_for(serve(bot, inp=inp, out=out), 30) == 0  # ends at EOF

    assert "killed and flat" in out.getvalue() and "1 position(s) sold" in out.getvalue()
    [sold] = _sells(paper)
    assert sold.symbol == "ETH/USDT" and sold.filled == pytest.approx(held.amount)
    assert _remembered(tmp_path, PAPER_LABEL) == ("killed", [])
