"""The mode commands (/pause, /unpause, /stop, /resume, /kill, /abort) through the real
Dispatcher and handlers, on paper accounts (no Telegram)."""

from __future__ import annotations

import asyncio
import re

from handlers.reply import plain
from tests.handlers_support import office_fixture, pair_fixture  # noqa: F401 (fixtures)
from trading.modes import Mode


async def test_pause_then_unpause_and_unpause_when_running_is_refused(office):
    trader = office.rig.trader
    refused = await office.run("/unpause")
    assert not refused.ok and "trader is running, not paused" in refused.text
    assert trader.mode is Mode.RUNNING
    paused = await office.run("/pause")
    assert paused.ok and "paper:main: paused (was running)" in paused.text
    assert trader.mode is Mode.PAUSED
    again = await office.run("/pause")
    assert again.ok and "already paused" in again.text and trader.mode is Mode.PAUSED
    resumed = await office.run("/unpause")
    assert resumed.ok and "running again" in resumed.text and trader.mode is Mode.RUNNING


async def test_a_named_account_is_paused_alone(pair):
    reply = await pair.run("/pause kraken:master")
    assert reply.ok and "kraken:master: paused" in reply.text and "paper:main" not in reply.text
    assert [t.mode for t in pair.desk.traders] == [Mode.RUNNING, Mode.PAUSED]


async def test_unpause_with_one_account_paused_reports_each(pair):
    await pair.run("/pause kraken")
    reply = await pair.run("/unpause")
    assert reply.ok  # one of them did it
    assert "✋ paper:main: trader is running, not paused" in reply.text
    assert "▶️ kraken:master: running again" in reply.text


async def test_a_pause_inside_a_stop_cancels_its_orders_and_unpause_returns_to_the_stop(office):
    await office.enter(office.rig, ["BTC/USDT"])
    await office.confirm("/stop")  # a resting limit exit is now on the book
    assert any(o.is_open for o in office.rig.open_orders())
    reply = await office.run("/pause")
    assert reply.ok and "paused (was stopping)" in reply.text
    assert "1 open order(s) cancelled" in reply.text and "/unpause goes back" in reply.text
    assert not any(o.is_open for o in office.rig.open_orders())
    await office.rig.cycles(2)
    assert office.rig.trader.mode is Mode.PAUSED  # the stop does not go on by itself
    back = await office.run("/unpause")
    assert back.ok and "back to stopping" in back.text
    assert office.rig.trader.mode is Mode.STOPPING


async def test_kill_asks_first_and_cancel_changes_nothing(office):
    await office.enter(office.rig, ["BTC/USDT"])
    ask = await office.run("/kill")
    assert [b.label for b in ask.buttons] == ["Confirm", "Cancel"]
    assert "Confirm /kill" in ask.text
    cancelled = await office.dispatcher.press(ask.buttons[1].data, "tester")
    assert "nothing done" in cancelled.text
    assert office.rig.trader.mode is Mode.RUNNING and office.rig.held("BTC/USDT") > 0


async def test_kill_now_sells_everything_and_reports_flat_with_pnl(office):
    await office.enter(office.rig, ["BTC/USDT", "ETH/USDT"])
    reply = await office.run("/kill now")
    text = plain(reply.text)
    assert reply.ok and "paper:main: killed and flat" in text
    assert "2 position(s) sold" in text
    assert re.search(r"• BTC/USDT [\d.]+ @ [\d,.]+ · PnL [+-]", text)
    assert office.rig.held("BTC/USDT") == 0 and office.rig.held("ETH/USDT") == 0
    assert office.rig.trader.mode is Mode.KILLED
    again = await office.run("/kill now")
    assert not again.ok and "already killed and flat" in again.text
    entry = office.store.audit_log()[1]
    assert (entry.command, entry.who) == ("kill", "tester") and "killed and flat" in entry.result


async def test_kill_of_one_named_account_leaves_the_other_trading(pair):
    await pair.enter(pair.rigs[1], ["SOL/USDT"])
    reply = await pair.run("/kill kraken now")
    assert reply.ok and "kraken:master: killed and flat" in reply.text
    assert [t.mode for t in pair.desk.traders] == [Mode.RUNNING, Mode.KILLED]


async def test_now_may_come_before_the_account(pair):
    reply = await pair.run("/kill now kraken")
    assert reply.ok and "kraken:master" in reply.text and "paper:main" not in reply.text


async def test_stop_exits_with_limit_orders_then_resume_trades_again(office):
    await office.enter(office.rig, ["BTC/USDT"])
    reply = await office.confirm("/stop")
    assert reply.ok and "stopping: exiting 1 position(s) with limit orders" in reply.text
    assert office.rig.trader.mode is Mode.STOPPING
    office.rig.paper.shock("BTC/USDT", 2.0)  # the limit exit at the touch fills
    await office.rig.cycles(6)
    assert office.rig.trader.mode is Mode.STOPPED
    resumed = await office.run("/resume")
    assert resumed.ok and "running again (was stopped)" in resumed.text
    refused = await office.run("/resume")
    assert not refused.ok and "already running" in refused.text


async def test_abort_answers_what_stays_open_before_ending_the_process(office):
    await office.enter(office.rig, ["BTC/USDT"])
    reply = await office.run("/abort now")
    text = plain(reply.text)
    assert "Aborting" in text and "• BTC/USDT" in text and "The process ends now" in text
    assert office.aborted == []  # not before the reply is in the transport's hands
    await asyncio.sleep(0)
    assert office.aborted == [True]
    assert office.rig.held("BTC/USDT") > 0  # nothing touched
    await office.rig.trader.run_cycle()
    assert office.rig.created() == 1  # an aborted trader places nothing more


async def test_abort_with_an_argument_is_refused_before_any_confirmation(office):
    reply = await office.run("/abort kraken")
    assert not reply.ok and not reply.buttons and "takes no account" in reply.text
    assert office.aborted == []
