"""Reconciliation's two rules against a single early look: a balance short of a position is
acted on only when two syncs in a row show it (never in a pass that moved an order of that
symbol), and an order of unknown outcome is dropped as never placed only after two misses made
once the exchange could no longer accept it."""

from __future__ import annotations

from dataclasses import replace

from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from trading.errors import Rejected
from trading.models import AccountState, Balance, OrderRequest, OrderType, Side
from trading.modes import Purpose
from trading.risk import OrderIntent


async def _holding_eth():
    """A position the bot checks itself (no stop resting at the exchange to reconcile too)."""
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
    rig.paper.stop_types = ()
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert set(rig.trader.book.positions) == {"ETH/USDT"}
    return rig


def _without(state: AccountState, currency: str) -> AccountState:
    """The same account state, as a balance read that raced a fill would show it."""
    total = {c: v for c, v in state.balance.total.items() if c != currency}
    free = {c: v for c, v in state.balance.free.items() if c != currency}
    return replace(state, balance=Balance(free=free, total=total))


async def test_one_short_balance_between_good_ones_never_touches_the_position():
    rig = await _holding_eth()
    reconciler, book = rig.trader.reconciler, rig.trader.book
    amount = book.positions["ETH/USDT"].amount

    for _ in range(3):  # short, fine, short, fine...: never two in a row
        good = await rig.connector.sync()
        kinds = [d.kind for d in await reconciler.reconcile(_without(good, "ETH"))]
        assert kinds == ["unresolved"]
        assert [d.kind for d in await reconciler.reconcile(good)] == []

    assert book.positions["ETH/USDT"].amount == amount and rig.store.trades(book.label) == []


async def test_two_short_balances_in_a_row_close_the_position():
    rig = await _holding_eth()
    reconciler, book = rig.trader.reconciler, rig.trader.book
    short = _without(await rig.connector.sync(), "ETH")

    await reconciler.reconcile(short)
    differences = await reconciler.reconcile(short)

    assert [(d.kind, d.symbol) for d in differences] == [("position_closed", "ETH/USDT")]
    assert book.positions == {}


async def test_a_shortfall_is_never_acted_on_in_a_pass_that_moved_an_order_of_its_symbol():
    rig = await _holding_eth()
    reconciler, book = rig.trader.reconciler, rig.trader.book
    short = _without(await rig.connector.sync(), "ETH")
    amount = book.positions["ETH/USDT"].amount
    request = OrderRequest(
        "ETH/USDT", Side.SELL, OrderType.MARKET, amount, book.new_client_id(Purpose.EXIT)
    )
    book.pending(request, Purpose.EXIT)  # an exit of unknown outcome: it may be what took the coins

    for _ in range(3):
        differences = await reconciler.reconcile(short)
        assert {d.kind for d in differences} == {"unresolved"}
        assert set(book.positions) == {"ETH/USDT"}

    rig.clock.advance(31.0)  # the exit can no longer land: two misses settle it
    await reconciler.reconcile(short)
    differences = await reconciler.reconcile(short)
    assert ("never_placed", "ETH/USDT") in [(d.kind, d.symbol) for d in differences]
    assert book.orders == {}
    # That pass moved the symbol; the next one, quiet and still short, acts.
    differences = await reconciler.reconcile(short)
    assert [(d.kind, d.symbol) for d in differences] == [("position_closed", "ETH/USDT")]


async def test_an_unknown_outcome_is_looked_up_every_sync_and_adopted_whenever_it_shows():
    rig = await _holding_eth()
    reconciler, book = rig.trader.reconciler, rig.trader.book
    amount = book.positions["ETH/USDT"].amount
    request = OrderRequest(
        "ETH/USDT", Side.SELL, OrderType.MARKET, amount, book.new_client_id(Purpose.EXIT)
    )
    book.pending(request, Purpose.EXIT)
    rig.clock.advance(40.0)
    first = await reconciler.reconcile(await rig.connector.sync())
    assert [d.kind for d in first] == ["unresolved"]  # one miss past the window: not enough
    await rig.paper.create_order(request)  # it shows after all (an exchange that lagged)

    second = await reconciler.reconcile(await rig.connector.sync())

    assert ("adopted", "ETH/USDT") in [(d.kind, d.symbol) for d in second]
    assert book.positions == {} and book.orders == {}
    assert rig.held("ETH/USDT") == 0


async def _resting_buy(rig):
    """A limit buy far below the market: open on the exchange, tracked by the book."""
    price = rig.paper.price("BTC/USDT") * 0.5
    placement = await rig.trader.router.place(
        OrderIntent("BTC/USDT", Side.BUY, 50.0 / price, price), limit_price=price
    )
    assert placement.ok and placement.order.is_open
    return placement.order


def _hiding(state: AccountState, order_id: str) -> AccountState:
    """The state as an open-orders read that missed one order would show it."""
    return replace(state, open_orders=tuple(o for o in state.open_orders if o.id != order_id))


async def test_a_generic_refusal_to_look_an_order_up_does_not_make_it_gone():
    rig = await _holding_eth()
    reconciler, book = rig.trader.reconciler, rig.trader.book
    order = await _resting_buy(rig)
    rig.paper.inject("fetch_order", Rejected("bad request: try again"), count=1)

    first = await reconciler.reconcile(_hiding(await rig.connector.sync(), order.id))

    assert [(d.kind, d.symbol) for d in first] == [("unresolved", "BTC/USDT")]
    assert order.id in book.orders  # still tracked: it may still fill
    assert [d.kind for d in await reconciler.reconcile(await rig.connector.sync())] == []
    assert book.orders[order.id].order.is_open


async def test_a_refusal_that_persists_over_syncs_is_believed_so_exits_are_not_held_up():
    rig = await _holding_eth()
    reconciler, book = rig.trader.reconciler, rig.trader.book
    order = await _resting_buy(rig)
    rig.paper.inject("fetch_order", Rejected("unknown order sent"), count=-1)

    kinds = []
    for _ in range(2):
        state = _hiding(await rig.connector.sync(), order.id)
        kinds.append([d.kind for d in await reconciler.reconcile(state)])

    assert kinds == [["unresolved"], ["gone"]]
    assert order.id not in book.orders
