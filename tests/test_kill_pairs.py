"""A kill of positions that each rest a stop at the exchange, on the paper exchange and simulated
time: each position's stop cancel and its sell go as a pair, the pairs side by side, paced by the
exchange's own limit on the exchange's own clock; never a sell before its stop is gone, never a
coin sold twice."""

from __future__ import annotations

from sim.clock import run_simulated
from sim.faults import FaultyPaper
from tests.engine_support import ScriptedStrategy, make_rig
from trading.clock import Clock, ScaledClock
from trading.models import OrderRequest, Side
from trading.settings import TradingSettings

SETTINGS = TradingSettings(min_quote_volume=0.0, max_positions=60, max_exposure=1.0)


class Recording(FaultyPaper):
    """The paper exchange, noting each cancel and each order as (trader's time, what, symbol)."""

    def __init__(self, seen_by: Clock, **options) -> None:
        super().__init__(**options)
        self.seen_by = seen_by
        self.log: list[tuple[float, str, str]] = []

    async def cancel_order(self, order_id: str, symbol: str):
        self.log.append((self.seen_by.monotonic(), "cancel", symbol))
        return await super().cancel_order(order_id, symbol)

    async def create_order(self, request: OrderRequest):
        what = "stop" if request.type.is_stop else str(request.side)
        self.log.append((self.seen_by.monotonic(), what, request.symbol))
        return await super().create_order(request)


async def _holding(clock, paper: Recording, positions: int, rate: float):
    rig = make_rig(clock, strategy=ScriptedStrategy([]), settings=SETTINGS, paper=paper)
    await rig.trader.start()
    await clock.sleep(1.0)  # the start's requests paid off
    markets = await paper.load_markets()
    symbols = sorted(s for s, m in markets.items() if m.active)[:positions]
    for symbol in symbols:  # paced by hand: a buy and its stop take about five requests
        await clock.sleep(6.0 / rate)
        assert (await rig.trader.buy(symbol, 20.0)).ok, symbol
    assert len(rig.trader.book.open_orders(purpose="guard")) == positions
    await clock.sleep(10.0)  # the bucket refills
    return rig, symbols


def _after(paper: Recording, started: float) -> list[tuple[float, str, str]]:
    return [(t - started, what, symbol) for t, what, symbol in paper.log if t >= started]


def _each_sold_once_after_its_stop_went(events, symbols) -> None:
    for symbol in symbols:
        mine = [what for _, what, s in events if s == symbol]
        assert mine == ["cancel", str(Side.SELL)], (symbol, mine)


def test_a_kill_sells_within_100_ms_when_the_paper_exchange_runs_ten_times_faster():
    """bench/scale.py: /kill's first sell came 186 ms after the command. The order pacer spaced
    the stops' cancels on the trader's clock at the exchange's 20 requests a second, though the
    exchange counts them in paper time (ten times faster there), and every stop was cancelled
    before the first sell."""

    async def main(clock):
        paper = Recording(
            clock, clock=ScaledClock(10.0, base=clock), markets=20, balances={"USDT": 10_000.0}
        )
        rig, symbols = await _holding(clock, paper, 3, rate=20.0)
        started = clock.monotonic()
        kill = await rig.trader.kill()
        await rig.trader.close()
        return rig, kill, symbols, _after(paper, started)

    rig, kill, symbols, events = run_simulated(main)
    sells = [t for t, what, _ in events if what == str(Side.SELL)]
    assert sells[0] < 0.100, events
    _each_sold_once_after_its_stop_went(events, symbols)
    assert kill.flat and rig.trader.book.positions == {} and kill.cancelled == 3
    assert all(rig.held(s) == 0 for s in symbols)


def test_a_kill_of_many_positions_sells_the_first_before_every_other_stop_is_cancelled():
    """Fifty concurrent exits used to cancel all fifty stops (at the exchange's pace) before
    any sell went; now a sell whose stop is gone goes ahead of the cancels still waiting."""
    rate, positions = 10.0, 12

    async def main(clock):
        paper = Recording(
            clock,
            clock=clock,
            markets=positions + 8,
            rate_limit=rate,
            burst=4,
            balances={"USDT": 100_000.0},
        )
        rig, symbols = await _holding(clock, paper, positions, rate)
        started = clock.monotonic()
        kill = await rig.trader.kill()
        seconds = clock.monotonic() - started
        await rig.trader.close()
        return rig, kill, symbols, _after(paper, started), seconds

    rig, kill, symbols, events, seconds = run_simulated(main)
    sells = [t for t, what, _ in events if what == str(Side.SELL)]
    cancels = [t for t, what, _ in events if what == "cancel"]
    pace = 1.0 / (rate * 0.9)
    assert sells[0] <= 3 * pace + 1e-6, events[:6]
    assert sells[0] < cancels[-1]  # the first sell did not wait for the last stop's cancel
    _each_sold_once_after_its_stop_went(events, symbols)
    assert kill.flat and all(rig.held(s) == 0 for s in symbols)
    assert seconds < 1.5 * 2 * positions / rate  # two requests a position at the pace


def test_a_kill_whose_stop_already_sold_a_position_sells_only_the_others():
    """The stop triggered at the exchange before the kill heard of it: its cancel is refused
    (the order is gone), the fill is read and applied, and that position is not sold again."""

    async def main(clock):
        paper = Recording(clock, clock=clock, markets=20, balances={"USDT": 10_000.0})
        rig, symbols = await _holding(clock, paper, 2, rate=20.0)
        fallen = symbols[0]
        paper.shock(fallen, -40)  # far below its stop: the exchange sells it on its own
        await clock.sleep(2.0)
        started = clock.monotonic()
        kill = await rig.trader.kill()
        await rig.trader.close()
        return rig, kill, symbols, _after(paper, started)

    rig, kill, (fallen, other), events = run_simulated(main)
    assert [(what, s) for _, what, s in events if s == fallen] == [("cancel", fallen)]
    assert [what for _, what, s in events if s == other] == ["cancel", str(Side.SELL)]
    assert kill.flat and kill.problems == ()
    reasons = {t.symbol: t.reason for t in kill.closed}
    assert reasons == {fallen: "stop-loss (on exchange)", other: "kill"}
    assert rig.held(fallen) == 0 and rig.held(other) == 0
    sold = [o for o in rig.paper.order_log if o.side is Side.SELL and o.filled > 0]
    assert sorted(o.symbol for o in sold) == sorted([fallen, other])  # each sold once
