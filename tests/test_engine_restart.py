"""Persistence and reconciliation: a restart on the same DATA_DIR picks up where it left off."""

from __future__ import annotations

from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from trading.events import StateChanged, TradeClosed, TradeOpened
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.modes import Mode, Purpose
from trading.store import Store


def _restart(rig, tmp_path, strategy=None):
    """A new process: a new store connection on the same file, a new connector and trader,
    the same exchange account."""
    rig.store.close()
    return make_rig(
        rig.clock,
        paper=rig.paper,
        store=Store.in_dir(tmp_path),
        strategy=strategy or rig.strategy,
    )


async def test_restart_on_the_same_data_dir_keeps_bans_pause_positions_and_does_not_rebuy(
    tmp_path,
):
    strategy = ScriptedStrategy(["ETH/USDT", "SOL/USDT"])
    first = make_rig(FakeClock(), strategy=strategy, store=Store.in_dir(tmp_path))
    await first.trader.start()
    await first.trader.run_cycle()
    await first.trader.ban("BNB/USDT")
    await first.trader.pause()
    before = dict(first.trader.book.positions)
    placed = first.created()

    second = _restart(first, tmp_path)
    await second.trader.start()

    assert second.trader.mode is Mode.PAUSED
    assert second.trader.book.positions == before
    assert set(second.store.bans(second.trader.label)) == {"BNB/USDT"}
    [restored] = second.of(StateChanged)
    assert restored.new == "paused" and "restart" in restored.reason
    assert (await second.trader.unpause()).ok
    strategy.entries = ["ETH/USDT", "SOL/USDT", "BNB/USDT"]
    await second.cycles(3)
    assert second.created() == placed  # no re-buy of what is held, nothing banned bought
    assert set(second.trader.book.positions) == {"ETH/USDT", "SOL/USDT"}


async def test_a_kill_survives_a_restart(tmp_path):
    first = make_rig(
        FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]), store=Store.in_dir(tmp_path)
    )
    await first.trader.start()
    await first.trader.run_cycle()
    await first.trader.kill()

    second = _restart(first, tmp_path)
    await second.trader.start()
    await second.cycles(2)

    assert second.trader.mode is Mode.KILLED
    assert second.trader.book.positions == {} and second.held("ETH/USDT") == 0


async def test_restart_adopts_a_limit_exit_that_filled_while_the_bot_was_down(tmp_path):
    strategy = ScriptedStrategy(["ETH/USDT"], stop=0.5, target=0.5)
    first = make_rig(FakeClock(), strategy=strategy, store=Store.in_dir(tmp_path))
    await first.trader.start()
    await first.trader.run_cycle()
    await first.trader.stop()
    [resting] = first.open_orders()
    # The bot goes down; meanwhile the price rises through the resting sell.
    first.clock.advance(120)
    first.paper.shock("ETH/USDT", 5)

    second = _restart(first, tmp_path)
    await second.trader.start()

    assert second.trader.book.positions == {} and second.held("ETH/USDT") == 0
    [closed] = second.of(TradeClosed)
    assert closed.symbol == "ETH/USDT" and closed.price == resting.price
    [stored] = [o for o in second.store.orders(second.trader.label) if o.order.id == resting.id]
    assert stored.order.status is OrderStatus.CLOSED
    await second.trader.run_cycle()
    assert second.trader.mode is Mode.STOPPED


async def test_restart_finds_an_order_sent_just_before_a_crash_by_its_client_id(tmp_path):
    first = make_rig(FakeClock(), store=Store.in_dir(tmp_path))
    await first.trader.start()
    book = first.trader.book
    entry = Purpose.ENTRY
    sent = OrderRequest("ETH/USDT", Side.BUY, OrderType.MARKET, 0.05, book.new_client_id(entry))
    lost = OrderRequest("SOL/USDT", Side.BUY, OrderType.MARKET, 1.0, book.new_client_id(entry))
    book.pending(sent, Purpose.ENTRY, reason="scripted", stop_loss=1000.0, take_profit=3000.0)
    book.pending(lost, Purpose.ENTRY, reason="scripted")
    await first.paper.create_order(sent)  # the exchange took it; the answer never came back
    # ... and the process died before `lost` was sent.

    second = _restart(first, tmp_path)
    await second.trader.start()

    position = second.trader.book.positions["ETH/USDT"]
    assert position.amount == 0.05
    assert (position.stop_loss, position.take_profit) == (1000.0, 3000.0)
    assert [e.symbol for e in second.of(TradeOpened)] == ["ETH/USDT"]
    assert "SOL/USDT" not in second.trader.book.positions
    # `lost` is not on the exchange, but its send time died with the first process: it stays
    # unsettled (no new SOL entry) until it is too old to land and missed twice.
    assert [t.client_id for t in second.trader.book.orders.values()] == [lost.client_order_id]
    assert "SOL/USDT" in second.trader.book.pending_entries()
    await second.cycles(3, step=60.0)  # asked at 0 s (in the window), missed at 60 s, 120 s
    statuses = {o.order.client_order_id: o.order.status for o in second.store.orders("paper:main")}
    assert statuses[lost.client_order_id] is OrderStatus.REJECTED
    assert [t.purpose for t in second.trader.book.orders.values()] == ["guard"]  # ETH's stop


async def test_client_order_ids_are_unique_across_restarts(tmp_path):
    clock = FakeClock()
    first = make_rig(clock, store=Store.in_dir(tmp_path))
    ids = {first.trader.book.new_client_id(Purpose.ENTRY) for _ in range(100)}
    second = _restart(first, tmp_path)
    ids |= {second.trader.book.new_client_id(Purpose.ENTRY) for _ in range(100)}
    assert len(ids) == 200
    assert all(len(i) <= 36 for i in ids)
