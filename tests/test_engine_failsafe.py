"""Kill, the dead switch and Fatal faults: every way out ends flat (or halted) and announced."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sim.clock import FakeClock
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.errors import Fatal, RateLimited, Rejected, Transient
from trading.events import Emergency, EmergencyCleared, StateChanged, TradeClosed
from trading.models import OrderType, Side
from trading.modes import Mode

THREE = ["ETH/USDT", "SOL/USDT", "BNB/USDT"]

OWN_COINS = {"USDT": 10_000.0, "SOL": 3.0}  # the user holds SOL outside the bot


async def _rig_with_positions(**options):
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(THREE), **options)
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert set(rig.trader.book.positions) == set(THREE)
    return rig


async def _settle(rig, rounds: int = 1000) -> None:
    """Let the trader's background retry loop run (bounded; FakeClock sleeps are instant). Each
    round of a kill whose orders all time out sends each position's stop again, so settling
    them all afterwards takes more steps than the rounds alone."""
    for _ in range(rounds):
        if rig.trader.failsafe.flattening is None or rig.trader.failsafe.flattening.done():
            return
        await asyncio.sleep(0)


def _flat_at_exchange(rig) -> bool:
    return all(rig.held(s) == 0 for s in THREE) and rig.open_orders() == []


async def test_kill_cancels_everything_and_exits_every_position_at_market():
    rig = await _rig_with_positions()
    await rig.trader.stop()  # leaves resting OCO exits: each position's stop
    assert rig.open_orders()

    result = await rig.trader.kill()

    assert result.ok and result.flat and result.mode is Mode.KILLED
    # Each OCO is lifted right before its own position's exit, and counted as cancelled.
    assert result.cancelled == 3 and result.rounds == 1 and result.remaining == ()
    assert {t.symbol for t in result.closed} == set(THREE)
    assert _flat_at_exchange(rig)
    sells = [o for o in rig.paper.order_log if o.side is Side.SELL and o.filled > 0]
    assert {o.type for o in sells} == {OrderType.MARKET}
    assert rig.of(Emergency) == []
    assert rig.store.mode(rig.trader.label) == "killed"


async def test_kill_when_exit_fails_twice_then_succeeds_ends_flat():
    # No rate limit, so no order pacing: the time that passes is the backoff alone.
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]), rate_limit=0)
    await rig.trader.start()
    await rig.trader.run_cycle()
    # Three refusals: the first exit, the stop put back after it, the second exit.
    rig.paper.inject("create_order", Rejected("exchange busy, try again"), count=3)
    started = rig.clock.monotonic()

    result = await rig.trader.kill()

    assert result.flat and result.rounds == 3 and result.mode is Mode.KILLED
    assert [p for p in result.problems if "exchange busy" in p] == [
        "ETH/USDT: rejected: exchange busy, try again"
    ] * 2
    assert rig.held("ETH/USDT") == 0 and rig.trader.book.positions == {}
    assert rig.clock.monotonic() - started == 1.0 + 2.0  # backoff between the rounds
    [emergency] = rig.of(Emergency)
    assert emergency.key == f"kill-not-flat:{rig.trader.label}"
    [cleared] = rig.of(EmergencyCleared)
    assert cleared.key == emergency.key
    [closed] = rig.of(TradeClosed)
    assert closed.reason == "kill"


async def test_kill_that_cannot_get_flat_keeps_retrying_in_the_background_until_flat():
    rig = await _rig_with_positions()
    rig.paper.inject("create_order", Transient("gateway timeout"), count=-1)

    result = await rig.trader.kill()

    assert not result.flat and set(result.remaining) == set(THREE)
    assert "retrying" in result.reason
    assert [e.key for e in rig.of(Emergency)] == [f"kill-not-flat:{rig.trader.label}"]
    assert rig.trader.failsafe.flattening is not None
    rig.paper.clear_faults()
    await _settle(rig)
    assert rig.trader.book.positions == {} and _flat_at_exchange(rig)
    assert [e.key for e in rig.of(EmergencyCleared)] == [f"kill-not-flat:{rig.trader.label}"]
    await rig.trader.close()


async def test_bug_in_the_strategy_enters_failsafe_and_ends_flat_with_an_emergency():
    rig = await _rig_with_positions()
    rig.strategy.bug = ZeroDivisionError("division by zero")
    rig.strategy.entries = ["XRP/USDT"]

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.FAILSAFE
    assert rig.trader.book.positions == {} and _flat_at_exchange(rig)
    [emergency] = rig.of(Emergency)
    assert emergency.key == f"failsafe:{rig.trader.label}"
    assert "ZeroDivisionError" in emergency.message
    [change] = rig.of(StateChanged)
    assert (change.old, change.new) == ("running", "failsafe")
    placed = rig.created()
    await rig.cycles(3)
    assert rig.created() == placed  # no entries in failsafe


async def test_bug_raised_by_the_exchange_call_ends_flat_with_an_emergency():
    rig = await _rig_with_positions()
    rig.paper.inject("fetch_tickers", RuntimeError("bug"))

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.FAILSAFE
    assert _flat_at_exchange(rig)
    assert any("RuntimeError: bug" in e.message for e in rig.of(Emergency))


async def test_fatal_fault_with_flatten_policy_exits_everything():
    rig = await _rig_with_positions()
    rig.paper.inject("fetch_tickers", Fatal("API key revoked"))

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.FAILSAFE and _flat_at_exchange(rig)
    assert [e.key for e in rig.of(Emergency)] == [f"fatal:{rig.trader.label}"]


async def test_fatal_fault_with_stop_policy_halts_with_positions_left_to_their_stops():
    rig = await _rig_with_positions(settings=replace(SETTINGS, failsafe_on_fatal="stop"))
    rig.paper.inject("fetch_tickers", Fatal("permission denied"))

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.HALTED
    assert set(rig.trader.book.positions) == set(THREE)
    assert "permission denied" in rig.of(Emergency)[0].message
    placed = rig.created()
    await rig.cycles(2)
    assert rig.created() == placed  # halted: nothing is entered or flattened
    assert {o.symbol for o in rig.stops()} == set(THREE)  # resting at the exchange
    rig.paper.shock("ETH/USDT", -20)  # through its stop-loss: positions keep their stops
    await rig.cycles(2)
    assert rig.created() == placed  # the exchange sold it, not the bot
    assert set(rig.trader.book.positions) == set(THREE) - {"ETH/USDT"}

    resumed = await rig.trader.resume()
    assert resumed.ok and rig.trader.mode is Mode.RUNNING
    assert [e.key for e in rig.of(EmergencyCleared)] == [f"fatal:{rig.trader.label}"]


async def test_resume_after_a_kill_once_flat_trades_again_and_a_second_kill_works():
    rig = await _rig_with_positions()
    await rig.trader.kill()
    rig.strategy.entries = ["XRP/USDT"]
    await rig.cycles(1)
    assert rig.trader.book.positions == {}  # killed: no entries

    resumed = await rig.trader.resume()
    await rig.cycles(1)
    assert resumed.ok and resumed.old is Mode.KILLED
    assert set(rig.trader.book.positions) == {"XRP/USDT"}

    again = await rig.trader.kill()
    assert again.flat and rig.held("XRP/USDT") == 0
    refused = await rig.trader.kill()
    assert not refused.ok and refused.reason == "already killed"


async def test_abort_touches_nothing_and_reports_what_stays_open():
    rig = await _rig_with_positions()
    await rig.trader.stop()
    placed = rig.created()

    result = await rig.trader.abort()
    await rig.cycles(2)

    assert {p.symbol for p in result.positions} == set(THREE)
    assert len(result.open_orders) == 3
    assert rig.created() == placed and len(rig.open_orders()) == 3


async def test_a_bug_in_the_sync_itself_still_gets_every_position_out_and_says_so():
    rig = await _rig_with_positions()
    rig.paper.inject("fetch_balance", RuntimeError("bug in balance parsing"), count=-1)

    await rig.trader.run_cycle()

    assert rig.trader.mode is Mode.FAILSAFE
    assert all(rig.held(s) == 0 for s in THREE)  # the exits went out on the last known book
    keys = [e.key for e in rig.of(Emergency)]
    label = rig.trader.label
    assert keys == [f"failsafe:{label}", f"failsafe-not-flat:{label}"]  # flat is unconfirmed
    rig.paper.clear_faults()
    await _settle(rig)
    assert [e.key for e in rig.of(EmergencyCleared)] == [f"failsafe-not-flat:{label}"]
    await rig.trader.close()


async def test_the_owner_takes_over_a_failsafe_with_pause_and_nothing_more_is_sold():
    """A Fatal that persists flattens; the owner's /pause stops it at once, the positions left
    keep their stops, a restart restores the pause (not the failsafe), and /resume trades."""
    rig = await _rig_with_positions()
    rig.paper.inject("create_order", Fatal("key revoked"), count=-1)  # no exit gets out
    rig.strategy.bug = RuntimeError("a bug in the cycle")
    rig.strategy.entries = ["XRP/USDT"]  # scanned, so the strategy runs and raises
    await rig.trader.run_cycle()
    assert rig.trader.mode is Mode.FAILSAFE and rig.trader.failsafe.retrying

    paused = await rig.trader.pause()

    assert paused.ok and paused.old is Mode.FAILSAFE and rig.trader.mode is Mode.PAUSED
    assert not rig.trader.failsafe.retrying  # the flattening stopped
    rig.paper.clear_faults()
    rig.strategy.bug, rig.strategy.entries = None, []
    sold = [o for o in rig.paper.order_log if o.side is Side.SELL and o.filled]
    await rig.cycles(3)
    assert [o for o in rig.paper.order_log if o.side is Side.SELL and o.filled] == sold
    assert set(rig.trader.book.positions) == set(THREE)
    assert {o.symbol for o in rig.stops()} == set(THREE)  # left to their stops
    assert rig.store.mode(rig.trader.label) == "paused"  # a restart comes back paused

    resumed = await rig.trader.resume()
    assert resumed.ok and rig.trader.mode is Mode.RUNNING


async def test_kill_names_what_stays_in_the_account_and_why():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]), balances=OWN_COINS)
    await rig.trader.start()
    await rig.trader.run_cycle()

    killed = await rig.trader.kill()

    assert killed.flat and rig.held("ETH/USDT") == 0
    [note] = killed.left
    assert note.startswith("SOL 3:") and "not bought by the bot" in note


async def test_a_sync_rate_limited_past_the_limit_pages_and_halts_but_never_liquidates():
    """Kraken's EAPI:Rate limit for longer than SYNC_FAILURE_LIMIT_SECONDS: flattening would go
    through the same throttled pipe; the owner is paged, entries stop, positions keep stops."""
    rig = await _rig_with_positions()
    rig.paper.inject("fetch_balance", RateLimited("EAPI:Rate limit exceeded"), count=-1)
    placed = rig.created()

    await rig.cycles(7)  # 420 s of the 300 s limit

    assert rig.trader.mode is Mode.HALTED
    assert rig.created() == placed  # nothing sold, nothing bought
    assert set(rig.trader.book.positions) == set(THREE)
    [alarm] = rig.of(Emergency)
    assert "rate-limiting" in alarm.message and "/kill" in alarm.message
