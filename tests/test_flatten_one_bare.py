"""A flatten of many positions that each rest a stop at the exchange bares one position at a
time: a position's sell goes out straight after its own stop's cancel is answered, before the
next position's stop is cancelled, so a host that dies mid-kill leaves at most one position
without its stop (issue 18, chaos seed 76: a failsafe sent four stops' cancels before the first
sell, then the host died). The sells of different positions still overlap at the exchange."""

from __future__ import annotations

import pytest

from sim.clock import run_simulated
from sim.faults import FaultyPaper
from tests.engine_support import ScriptedStrategy, make_rig
from trading.clock import Clock
from trading.models import OrderRequest
from trading.modes import Purpose
from trading.settings import TradingSettings

SETTINGS = TradingSettings(min_quote_volume=0.0, max_positions=20, max_exposure=1.0)
RATE = 20.0  # the exchange's requests a second: the order pacer's slot is about 56 ms
CANCELLED = 0.2  # seconds a cancel takes to answer: several of the pacer's slots
SOLD = 0.5  # and a market sell: longer than a cancel and the next position's sell's slot


class Recording(FaultyPaper):
    """The paper exchange, noting what reaches it and what it answers, in order:
    ("cancel" | "sell" | "buy" | "stop", symbol) when sent, ("sold", symbol) when a sell's
    answer leaves."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.log: list[tuple[str, str]] = []

    async def cancel_order(self, order_id: str, symbol: str):
        self.log.append(("cancel", symbol))
        return await super().cancel_order(order_id, symbol)

    async def create_order(self, request: OrderRequest):
        what = "stop" if request.type.is_stop else str(request.side)
        self.log.append((what, request.symbol))
        order = await super().create_order(request)
        if what == "sell":
            self.log.append(("sold", request.symbol))
        return order


async def _holding(clock: Clock, positions: int):
    paper = Recording(
        clock=clock, markets=positions + 6, rate_limit=RATE, burst=4, balances={"USDT": 1e5}
    )
    rig = make_rig(clock, strategy=ScriptedStrategy([]), settings=SETTINGS, paper=paper)
    await rig.trader.start()
    await clock.sleep(1.0)
    markets = await paper.load_markets()
    symbols = sorted(s for s, m in markets.items() if m.active)[:positions]
    for symbol in symbols:  # paced by hand: a buy and its stop take about five requests
        await clock.sleep(6.0 / RATE)
        assert (await rig.trader.buy(symbol, 20.0)).ok, symbol
    assert len(rig.trader.book.open_orders(purpose=Purpose.GUARD)) == positions
    await clock.sleep(10.0)  # the bucket refills
    # Every answer slower than the pacer's slot: a concurrent flatten's cancels all leave
    # before the first one's answer lets its sell follow.
    paper.inject_latency("cancel_order", CANCELLED, count=-1)
    paper.inject_latency("create_order", SOLD, count=-1)
    paper.log.clear()
    return rig, paper, symbols


def _bare_at_most_one_at_a_time(log: list[tuple[str, str]], symbols: list[str]) -> None:
    """Sent to the exchange in pairs: each position's stop cancel, then its sell, then the next
    position's cancel; each position sold once."""
    sent = [(what, symbol) for what, symbol in log if what in ("cancel", "sell")]
    cancels = [symbol for what, symbol in sent if what == "cancel"]
    assert sorted(cancels) == symbols, sent
    assert sent == [pair for s in cancels for pair in (("cancel", s), ("sell", s))], sent


def _sells_overlap(log: list[tuple[str, str]]) -> bool:
    """Some sell went out before an earlier one was answered."""
    in_flight = 0
    for what, _ in log:
        if what == "sell":
            if in_flight:
                return True
            in_flight += 1
        elif what == "sold":
            in_flight -= 1
    return False


@pytest.mark.parametrize("flatten", ["kill", "failsafe"])
def test_a_flatten_sells_each_position_before_it_lifts_the_next_ones_stop(flatten):
    async def main(clock):
        rig, paper, symbols = await _holding(clock, 4)
        if flatten == "kill":
            report = await rig.trader.kill()
            flat = report.flat
        else:
            failsafe = rig.trader.parts.failsafe
            await failsafe.dead_switch(RuntimeError("a bug in the cycle"))
            flat = not rig.trader.book.positions and not failsafe.retrying
        await rig.trader.close()
        return rig, paper, symbols, flat

    rig, paper, symbols, flat = run_simulated(main)
    _bare_at_most_one_at_a_time(paper.log, symbols)
    assert _sells_overlap(paper.log), paper.log  # not one position at a time end to end
    assert flat and all(rig.held(s) == 0 for s in symbols)
