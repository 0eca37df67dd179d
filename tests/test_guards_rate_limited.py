"""A 429 on a sell (issue 18, chaos seeds 54, 68, 97, 127, 145, 168, 186): exchanges answer "too
many requests" (Binance 429/418, Kraken EAPI:Rate limit exceeded) before they process the
request, so an order answered so was never placed. The bot used to count it as an unknown
outcome: the exit's placeholder stayed open until reconciliation settled it, and the stop the
exit had lifted stayed off all that time. Now the placeholder goes at once and the stop is put
back, as after a refusal; a timeout stays unknown (its stop goes back beside it)."""

from __future__ import annotations

from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import RateLimited, Transient
from trading.modes import Mode


async def _entered(clock: FakeClock, *symbols: str):
    rig = make_rig(clock, strategy=ScriptedStrategy(list(symbols)), rate_limit=0)
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    return rig


async def test_an_exit_answered_too_many_requests_puts_the_stop_back_in_the_same_cycle():
    rig = await _entered(FakeClock(), "ETH/USDT")
    rig.strategy.exits["ETH/USDT"] = "scripted exit"
    rig.paper.inject("create_order", RateLimited("429 Too Many Requests", retry_after=1.0))

    await rig.trader.run_cycle()

    assert rig.held("ETH/USDT") > 0
    assert [o.symbol for o in rig.stops()] == ["ETH/USDT"]
    assert all(t.confirmed for t in rig.trader.book.orders.values())  # nothing left in doubt


async def test_a_kill_whose_exit_is_rate_limited_leaves_the_position_guarded_and_not_in_doubt():
    rig = await _entered(FakeClock(), "ETH/USDT")
    rig.trader.failsafe.kill_patience = 0.0  # one round, then the background retry
    rig.paper.inject("create_order", RateLimited("EAPI:Rate limit exceeded"))

    result = await rig.trader.kill()

    assert not result.flat and rig.trader.mode is Mode.KILLED
    [stop] = rig.stops()
    assert stop.symbol == "ETH/USDT"
    assert all(t.confirmed for t in rig.trader.book.orders.values())


async def test_an_exit_that_timed_out_stays_in_doubt_until_reconciliation_settles_it():
    """No answer may still mean placed: the placeholder holds the next exit back, and the
    stop is back beside it meanwhile (tests/test_unknown_exits.py)."""
    rig = await _entered(FakeClock(), "ETH/USDT")
    rig.strategy.exits["ETH/USDT"] = "scripted exit"
    rig.paper.inject("create_order", Transient("read timeout"))

    await rig.trader.run_cycle()

    assert any(not t.confirmed for t in rig.trader.book.orders.values())
    assert [o.symbol for o in rig.stops()] == ["ETH/USDT"]
