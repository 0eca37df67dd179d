"""Longer runs: the trader on its own over simulated hours, the loop guard, and a concurrent
kill on virtual time (where concurrent waits overlap as in real time)."""

from __future__ import annotations

import asyncio

from sim.clock import FakeClock, run_simulated
from tests.engine_support import ScriptedStrategy, make_rig
from trading.events import SymbolBanned, TradeClosed, TradeOpened
from trading.models import Side
from trading.modes import Mode
from trading.order_pacer import OrderPacer
from trading.settings import TradingSettings
from trading.strategies import load_strategy


async def test_the_trader_opens_and_closes_positions_by_itself_over_simulated_hours():
    settings = TradingSettings(min_quote_volume=0.0, max_positions=5, stake_amount=200.0)
    rig = make_rig(FakeClock(), strategy=load_strategy("trend"), settings=settings, markets=30)
    await rig.trader.start()

    await rig.cycles(24 * 12, step=300)  # a simulated day, a cycle every 5 minutes

    opened, closed = rig.of(TradeOpened), rig.of(TradeClosed)
    assert len(opened) >= 4 and len(closed) >= 3
    assert {"stop-loss (on exchange)", "take-profit"} <= {c.reason for c in closed}
    assert rig.trader.mode is Mode.RUNNING and rig.trader.last_error is None
    trades = rig.store.trades(rig.trader.label)
    assert len(trades) == len(closed)
    held = {s for s, p in rig.trader.book.positions.items() if p.amount > 0}
    assert all(rig.held(s) >= rig.trader.book.positions[s].amount * 0.999 for s in held)
    assert len(held) <= settings.max_positions


async def test_loop_guard_bans_a_symbol_that_flips_too_often():
    strategy = ScriptedStrategy(["ETH/USDT"])
    strategy.exits["ETH/USDT"] = "flip"
    settings = TradingSettings(
        min_quote_volume=0.0,
        reentry_cooldown_seconds=0.0,
        loop_guard_round_trips=3,
        loop_guard_window_seconds=3600.0,
    )
    rig = make_rig(FakeClock(), strategy=strategy, settings=settings)
    await rig.trader.start()

    await rig.cycles(20)

    [banned] = rig.of(SymbolBanned)
    assert banned.symbol == "ETH/USDT" and "loop guard: 4 round trips" in banned.reason
    assert rig.store.bans(rig.trader.label)["ETH/USDT"].auto
    assert len(rig.of(TradeClosed)) == 4
    buys = [o for o in rig.paper.order_log if o.side is Side.BUY]
    assert len(buys) == 4


async def test_reentry_cooldown_spaces_entries_of_a_symbol():
    strategy = ScriptedStrategy(["ETH/USDT"])
    strategy.exits["ETH/USDT"] = "flip"
    settings = TradingSettings(min_quote_volume=0.0, reentry_cooldown_seconds=600.0)
    rig = make_rig(FakeClock(), strategy=strategy, settings=settings)
    await rig.trader.start()
    await rig.cycles(20)  # 20 minutes
    buys = [o.timestamp for o in rig.paper.order_log if o.side is Side.BUY]
    assert len(buys) == 2 and buys[1] - buys[0] >= 600


def test_kill_exits_fifty_positions_concurrently_within_the_rate_limit():
    rate = 10.0

    async def main(clock):
        rig = make_rig(
            clock,
            strategy=ScriptedStrategy([]),
            settings=TradingSettings(min_quote_volume=0.0, max_positions=60, max_exposure=1.0),
            markets=60,
            rate_limit=rate,
            burst=5,
            balances={"USDT": 100_000.0},
        )
        await rig.trader.start()
        markets = await rig.paper.load_markets()
        symbols = sorted(s for s, m in markets.items() if m.active)[:50]
        for symbol in symbols:  # open 50 positions, paced by hand: a buy takes 5 requests
            await clock.sleep(6.0 / rate)
            assert (await rig.trader.buy(symbol, 20.0)).ok, symbol
        await clock.sleep(5.0)  # the bucket refills
        rig.trader.router.pacer = OrderPacer(clock, rate)  # the venue's rate, as wired
        started = clock.monotonic()
        result = await rig.trader.kill()
        await rig.trader.close()
        return rig, result, clock.monotonic() - started, symbols

    rig, result, seconds, symbols = run_simulated(main)
    assert len(symbols) == 50
    assert result.flat and rig.trader.book.positions == {}
    assert all(rig.held(s) == 0 for s in symbols)
    # Each position's stop rests at the exchange: one cancel (its answer says what filled),
    # then the sell, so two requests per position at the venue's pace.
    floor = 2 * 50 / rate
    assert seconds < 1.5 * floor, (seconds, floor)


def test_kill_preempts_a_stuck_scan_at_once_and_the_stuck_cycle_buys_nothing():
    """It used to wait 5 s for the cycle's lock, then go ahead beside it."""

    async def main(clock):
        strategy = ScriptedStrategy(["ETH/USDT", "SOL/USDT"])
        rig = make_rig(clock, strategy=strategy)
        await rig.trader.start()
        await rig.trader.run_cycle()
        strategy.entries = ["BNB/USDT", "XRP/USDT"]
        rig.paper.inject_latency("fetch_tickers", 600.0)  # the next scan hangs for 10 minutes
        stuck = asyncio.ensure_future(rig.trader.run_cycle())
        await asyncio.sleep(1.0)
        started = clock.monotonic()
        kill = await rig.trader.kill()
        killed_after = clock.monotonic() - started
        await stuck  # it gave way quietly
        await rig.trader.close()
        return rig, kill, killed_after

    rig, kill, killed_after = run_simulated(main)
    assert kill.flat and killed_after < 1.0
    assert rig.trader.book.positions == {}
    assert all(rig.held(s) == 0 for s in ("ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT"))
    assert rig.trader.mode is Mode.KILLED
    assert rig.trader.last_error is None  # a pre-empted cycle is no fault


def test_a_sync_command_preempts_a_stuck_scan_instead_of_being_refused():
    async def main(clock):
        strategy = ScriptedStrategy(["ETH/USDT"])
        rig = make_rig(clock, strategy=strategy)
        await rig.trader.start()
        await rig.trader.run_cycle()
        strategy.entries = ["BNB/USDT"]
        rig.paper.inject_latency("fetch_tickers", 600.0)
        stuck = asyncio.ensure_future(rig.trader.run_cycle())
        await asyncio.sleep(1.0)
        started = clock.monotonic()
        synced = await rig.trader.sync()
        waited = clock.monotonic() - started
        await stuck
        after = await rig.trader.buy("SOL/USDT", 20.0)  # nothing holds the trader now
        await rig.trader.close()
        return rig, synced, waited, after

    rig, synced, waited, after = run_simulated(main)
    assert synced.ok and waited < 1.0
    assert after.ok
    assert set(rig.trader.book.positions) == {"ETH/USDT", "SOL/USDT"}  # the stuck scan bought none
