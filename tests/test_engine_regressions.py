"""Bugs the chaos soak (bench/chaos.py) and reviews found in the engine, one test each, named for
the behaviour that is now right. Each docstring names the seed or the review script that first
showed it."""

from __future__ import annotations

import asyncio

import pytest

from sim.clock import FakeClock, run_simulated
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import Rejected, Transient
from trading.events import Emergency, EmergencyCleared, TradeClosed
from trading.models import Market, Order, OrderRequest, OrderStatus, Side
from trading.modes import Mode
from trading.store import Store
from trading.venues.paper import PaperExchange


def test_resume_while_the_flattening_waits_for_a_stuck_cycle_leaves_the_lock_free():
    """Seed 8: a /resume cancelled the background flattening while it waited for the trader's
    lock; the lock request it had started went on, took the lock when the stuck cycle ended,
    and never gave it back, so every later cycle waited for ever."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy([]))
        trader = rig.trader
        await trader.start()
        assert (await trader.buy("ETH/USDT", 100.0)).ok
        rig.paper.inject("fetch_balance", Transient, count=-1)  # flat cannot be confirmed
        kill = await trader.kill()
        assert not kill.flat and trader.book.positions == {}  # sold, not confirmed: retrying
        rig.paper.clear_faults()
        rig.paper.inject_latency("fetch_balance", 300.0)  # the next cycle hangs in its sync
        stuck = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(3.0)  # the flattening now waits for the lock the cycle holds
        resumed = await trader.resume()
        await stuck
        try:
            await asyncio.wait_for(trader.run_cycle(), 120.0)
            finished = True
        except TimeoutError:
            finished = False
        locked = trader.lock.locked()
        await trader.close()
        return resumed, finished, locked, trader.mode

    resumed, finished, locked, mode = run_simulated(main)
    assert resumed.ok and mode is Mode.RUNNING
    assert finished, "the cycle after the resume waited for ever for the trader's lock"
    assert not locked


def test_an_entry_gated_before_a_pause_is_not_sent_after_it():
    """Seeds 72, 131, 161 (and 70, 122 for exits and stops): the gate was asked, the order
    waited for its turn at the exchange's pace, a /pause came in, and the order went out anyway
    while paused. The router now asks again right before it sends."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT", "SOL/USDT"]))
        trader = rig.trader
        await trader.start()
        assert trader.router.pacer.interval > 0  # the second entry waits for its turn
        cycle = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(trader.router.pacer.interval / 2)
        assert rig.created() == 1  # the first entry is out, the second waits
        paused = await trader.pause()
        await cycle
        await trader.close()
        return rig, paused

    rig, paused = run_simulated(main)
    assert paused.ok and rig.trader.mode is Mode.PAUSED
    assert rig.created() == 1
    assert [o.symbol for o in rig.sent()] == ["ETH/USDT"]
    assert list(rig.trader.book.positions) == ["ETH/USDT"]
    assert [t.purpose for t in rig.trader.book.orders.values()] == ["guard"]
    assert rig.trader.router.counts["refused"] == 1


def test_an_order_of_unknown_outcome_is_not_sent_again_once_the_trader_is_paused():
    """The same race on what used to be the connector's second attempt: after an unknown
    outcome it looks the order up (slowly) and the trader is paused meanwhile. Nothing is ever
    sent a second time now, paused or not; reconciliation settles the placeholder as never
    placed once the exchange could no longer take it."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
        trader = rig.trader
        await trader.start()
        rig.paper.inject("create_order", Transient)  # the first attempt's answer is lost
        rig.paper.inject_latency("find_order", 3.0)  # and the look takes a while
        cycle = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(1.0)
        paused = await trader.pause()
        await cycle
        unsettled = [t.client_id for t in trader.book.orders.values() if not t.confirmed]
        for _ in range(3):  # the scheduled cycles go on, a minute apart
            await asyncio.sleep(60.0)
            await trader.run_cycle()
        await trader.close()
        return rig, paused, unsettled

    rig, paused, unsettled = run_simulated(main)
    assert paused.ok and rig.trader.mode is Mode.PAUSED
    assert len(unsettled) == 1  # kept, unconfirmed, while it might still land
    assert rig.created() == 1 and rig.paper.order_log == []  # tried once, never taken
    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}


def test_a_kill_gets_flat_while_the_balance_endpoint_is_gone_and_an_exit_was_unanswered():
    """Seed 117: fetch_balance answered 404 for good (the sync escalated, nothing could be
    confirmed), and the kill's first exit got no answer. That exit of unknown outcome blocked
    every further exit of the symbol until a sync could settle it: never. Flatten rounds now
    settle such orders by client order id when the sync fails."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy([]))
        trader = rig.trader
        await trader.start()
        assert (await trader.buy("ETH/USDT", 100.0)).ok
        rig.paper.inject("fetch_balance", Transient("HTTP 404: exchange not available"), count=-1)
        rig.paper.inject("create_order", Transient)  # the exit's answer is lost...
        rig.paper.inject("find_order", Transient, count=3)  # ...and the look at once fails too
        kill = await trader.kill()
        await asyncio.sleep(120.0)  # the background flattening goes on
        await trader.close()
        return rig, kill

    rig, kill = run_simulated(main)
    assert rig.held("ETH/USDT") == 0  # out at the exchange: the money is safe
    assert rig.trader.book.positions == {} and rig.trader.book.orders == {}
    assert not kill.flat  # and honest about it: flat cannot be confirmed without a sync
    assert rig.trader.mode is Mode.KILLED


# ---- found by review: the money path around orders of unknown outcome and the sync ----------


class LaggyPaper(PaperExchange):
    """Binance -1007: the order executes, the answer is lost, and lookups right after it do not
    see the order yet: the next `lag` of them, and any for `hidden_for` seconds, answer "no such
    order"."""

    def __init__(self, *, lag: int = 1, hidden_for: float = 0.0, **options) -> None:
        super().__init__(**options)
        self.lag = lag
        self.hidden_for = hidden_for
        self.lose_answers = 1
        self._lagging = 0
        self._hidden_until = 0.0

    async def create_order(self, request: OrderRequest) -> Order:
        order = await super().create_order(request)
        if self.lose_answers:
            self.lose_answers -= 1
            self._lagging = self.lag
            self._hidden_until = self._clock.time() + self.hidden_for
            raise Transient("RequestTimeout: no answer", venue=self.name, call="create_order")
        return order

    async def find_order(self, client_order_id: str, symbol: str) -> Order | None:
        if self._lagging or self._clock.time() < self._hidden_until:
            self._lagging = max(0, self._lagging - 1)
            self.calls["find_order"] += 1
            return None
        return await super().find_order(client_order_id, symbol)


class BinanceLikePaper(LaggyPaper):
    """Binance, Kraken, OKX: a client order id must be unique among OPEN orders only, so a
    second send of a filled market order is accepted and fills again."""

    def _checked_terms(self, request: OrderRequest, market: Market):
        key = (market.symbol, request.client_order_id)
        record = self._by_client.get(key)
        if record is None or record.status is OrderStatus.OPEN:
            return super()._checked_terms(request, market)
        del self._by_client[key]
        try:
            return super()._checked_terms(request, market)
        finally:
            self._by_client.setdefault(key, record)


@pytest.mark.parametrize("venue", [LaggyPaper, BinanceLikePaper])
async def test_an_order_executed_after_a_lost_answer_is_sent_once_and_killed_flat(venue):
    """Review t2/t2b: a timed-out buy was looked up at once, not seen, and sent again. On a
    Binance-like exchange it filled twice (a kill then sold only one); on the paper exchange the
    second send was refused as a duplicate, the router dropped the order and the kill left the
    coins. Now it is sent once, kept unconfirmed, adopted by the kill's sync and sold."""
    clock = FakeClock()
    paper = venue(clock=clock, markets=12)
    rig = make_rig(clock, strategy=ScriptedStrategy([]), paper=paper)
    trader = rig.trader
    await trader.start()

    bought = await trader.buy("ETH/USDT", 100.0)

    assert not bought.ok and "no answer" in bought.reason  # honest: outcome unknown
    assert rig.created() == 1 and [o.side for o in paper.order_log] == [Side.BUY]
    held = rig.held("ETH/USDT")
    assert held > 0
    [unsure] = trader.book.orders.values()
    assert not unsure.confirmed and unsure.order.symbol == "ETH/USDT"

    kill = await trader.kill()

    assert kill.flat and rig.held("ETH/USDT") == 0
    assert [(o.side, o.filled) for o in paper.order_log] == [(Side.BUY, held), (Side.SELL, held)]
    assert trader.book.positions == {} and trader.book.orders == {}


def test_a_kill_is_not_flat_until_an_entry_of_unknown_outcome_is_found():
    """The exchange takes 25 s to show the timed-out buy: the kill must not report flat while
    it may still hold coins (its answer comes after 20 s), and sells them once they show."""

    async def main(clock):
        paper = LaggyPaper(clock=clock, markets=12, hidden_for=25.0)
        rig = make_rig(clock, strategy=ScriptedStrategy([]), paper=paper)
        await rig.trader.start()
        await rig.trader.buy("ETH/USDT", 100.0)
        kill = await rig.trader.kill()
        await asyncio.sleep(300.0)  # the background flattening goes on
        await rig.trader.close()
        return rig, kill

    rig, kill = run_simulated(main)
    assert not kill.flat and kill.remaining == ("ETH/USDT",)
    assert rig.held("ETH/USDT") == 0 and rig.created() == 2  # the buy once, then its exit
    keys = [e.key for e in rig.of(Emergency)]
    assert keys == [f"kill-not-flat:{rig.trader.label}"]
    assert [e.key for e in rig.of(EmergencyCleared)] == keys
    assert rig.trader.book.orders == {} and rig.trader.book.positions == {}


def test_an_order_that_never_reached_the_exchange_is_settled_only_after_the_window():
    """No answer, and the order truly never arrived: the placeholder holds its symbol until the
    exchange could no longer accept the request (receive window + margin) and two looks after
    that missed it; only then may the next cycle buy it again."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy([]))
        trader = rig.trader
        await trader.start()
        rig.paper.inject("create_order", Transient("connection reset"))
        await trader.buy("ETH/USDT", 100.0)
        pending = []
        for _ in range(4):
            pending.append(bool(trader.book.orders))
            await asyncio.sleep(20.0)
            await trader.run_sync()
        rig.strategy.entries = ["ETH/USDT"]
        await trader.run_cycle()
        return rig, pending

    rig, pending = run_simulated(main)
    # before, then after the syncs at 20 s (in the window), 40 s (past it: one miss is not
    # enough) and 60 s (the second miss: settled as never placed)
    assert pending == [True, True, True, False]
    assert rig.trader.reconciler.settle_seconds == 30.0
    assert rig.created() == 2 and len(rig.sent()) == 1  # the retry is the next entry
    assert set(rig.trader.book.positions) == {"ETH/USDT"}


def test_a_kill_during_a_slow_entry_sells_what_the_entry_bought():
    """Review t3: the kill's sync read the balance before the cycle's entry filled and the open
    orders after it, saw the new position "gone from the balance", closed it in the book and
    reported flat while the coins stayed. The sync now reads orders first and a shortfall must
    show on two syncs in a row."""

    async def main(clock):
        rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]))
        trader = rig.trader
        await trader.start()
        rig.paper.inject_latency("create_order", 8.0)  # a slow exchange: the entry lands at 8 s
        cycle = asyncio.ensure_future(trader.run_cycle())
        await asyncio.sleep(1.0)
        rig.paper.inject_latency("fetch_open_orders", 3.0)  # the kill's sync straddles the fill
        kill = await trader.kill()
        await cycle
        await trader.close()
        return rig, kill

    rig, kill = run_simulated(main)
    assert kill.flat and rig.held("ETH/USDT") == 0
    assert [(e.symbol, e.reason) for e in rig.of(TradeClosed)] == [("ETH/USDT", "kill")]
    # (its stop, placed right after the fill, was lifted before the kill's sell)
    assert [o.side for o in rig.sent()] == [Side.BUY, Side.SELL]


async def test_a_sync_refused_for_good_escalates_and_the_failsafe_sells_below_the_stop():
    """Review t1/t1b: the balance call answered a Rejected-class error (a BadRequest after an
    API change) for ever; every cycle was skipped quietly, no stop-loss was checked and nobody
    was told. Now it escalates to Fatal after SYNC_FAILURE_LIMIT_SECONDS like a timeout."""
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
    trader = rig.trader
    await trader.start()
    await trader.run_cycle()
    assert set(trader.book.positions) == {"ETH/USDT"}
    rig.paper.inject("fetch_balance", Rejected("BadRequest: unknown parameter"), count=-1)
    rig.paper.shock("ETH/USDT", -40)  # far below the 5 % stop-loss

    await rig.cycles(4, step=60.0)
    assert trader.mode is Mode.RUNNING and rig.of(Emergency) == []  # within the limit
    await rig.cycles(3, step=60.0)

    assert trader.mode is Mode.FAILSAFE
    assert rig.held("ETH/USDT") == 0  # the failsafe sold on the last known book
    assert next(e.key for e in rig.of(Emergency)) == f"fatal:{trader.label}"
    assert "sync failing" in trader.last_error and "BadRequest" in trader.last_error
    await trader.close()


async def test_a_restart_whose_markets_never_load_escalates_and_exits_once_they_do():
    """Review t4: after a restart the markets endpoint failed for good (a retired endpoint is a
    404, "exchange not available" to ccxt); the trader never started, never escalated, held its
    position unwatched for hours. Now the start-up load counts toward the same escalation."""
    clock = FakeClock()
    store = Store()
    first = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"]), store=store)
    await first.trader.start()
    await first.trader.run_cycle()
    assert set(first.trader.book.positions) == {"ETH/USDT"}
    second = make_rig(clock, strategy=ScriptedStrategy([]), store=store, paper=first.paper)
    first.paper.inject("load_markets", Transient("HTTP 404: exchange not available"), count=-1)
    trader = second.trader

    await trader.start()
    await second.cycles(7, step=60.0)

    assert not trader.started and trader.mode is Mode.FAILSAFE
    assert trader.connector.health.sync_failing_since == pytest.approx(1_700_000_000.0, abs=2)
    keys = [e.key for e in second.of(Emergency)]
    assert keys[0] == f"fatal:{trader.label}" and "markets failing" in trader.last_error
    assert set(trader.book.positions) == {"ETH/USDT"}  # no market, no order size: told, held

    first.paper.clear_faults()
    for _ in range(200):  # the background flattening retries on its own (FakeClock: instant)
        if trader.failsafe.flattening is None or trader.failsafe.flattening.done():
            break
        await asyncio.sleep(0)
    assert second.held("ETH/USDT") == 0 and trader.book.positions == {}
    await trader.close()
