"""Orders of ours the book does not follow (adversary note of issue 18/13): a 429 answer to a
placement drops its record, on the exchanges' word that it was not processed. An exchange that
executes it anyway left an order with the bot's client id that the reconciler listed as the
owner's: never managed, its fill counted as the owner's trade, its coins refused to a /kill.
Now such an order is adopted by the account tag in its client id; the owner's orders and another
bot instance's stay untouched."""

from __future__ import annotations

from dataclasses import replace

from sim.clock import FakeClock, run_simulated
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.book import Book
from trading.errors import RateLimited
from trading.events import OrderAdopted, discard
from trading.models import OrderRequest, OrderType, Side
from trading.modes import Purpose
from trading.store import Store

SYMBOL = "ETH/USDT"
# A market order fills at once: the feed's push is what shows it (the sync reads open orders).
PUSHED = replace(SETTINGS, event_feed="on")


def _too_many_requests() -> RateLimited:
    return RateLimited("429 Too Many Requests", retry_after=0.0)


async def _entered(clock: FakeClock, store: Store | None = None):
    rig = make_rig(
        clock, strategy=ScriptedStrategy([SYMBOL]), rate_limit=0, store=store, settings=PUSHED
    )
    await rig.trader.start()
    await rig.trader.run_cycle()
    rig.strategy.entries = []
    return rig


async def _limit_buy(rig, client_order_id: str, *, below: float = 0.9):
    """An order resting at the exchange that the bot's book never recorded."""
    price = (await rig.paper.fetch_tickers([SYMBOL]))[SYMBOL].last * below
    return await rig.paper.create_order(
        OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, 0.01, client_order_id, price=price)
    )


async def test_an_entry_the_exchange_executed_despite_a_429_becomes_a_guarded_position():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy([SYMBOL]), rate_limit=0, settings=PUSHED)
    await rig.trader.start()
    rig.paper.inject("create_order", _too_many_requests(), after=True)

    await rig.trader.run_cycle()  # the buy fills at the exchange; its answer is a 429
    rig.strategy.entries = []
    await rig.cycles(2)

    position = rig.trader.book.positions[SYMBOL]
    assert position.amount == rig.held(SYMBOL) and position.stop_loss is not None
    assert [s.symbol for s in rig.stops()] == [SYMBOL]  # its stop rests as any entry's
    [adopted] = rig.of(OrderAdopted)
    assert adopted.purpose == Purpose.ENTRY and not adopted.cancelling


async def test_a_stop_the_exchange_placed_despite_a_429_becomes_the_positions_guard():
    rig = await _entered(FakeClock())
    [guard] = rig.trader.book.open_orders(symbol=SYMBOL, purpose=Purpose.GUARD)
    await rig.trader.router.cancel(guard)  # lifted: the next cycle puts one back
    rig.paper.inject("create_order", _too_many_requests(), after=True)

    await rig.cycles(3)

    [stop] = rig.stops()
    assert stop.symbol == SYMBOL
    assert rig.trader.guards.on_exchange(SYMBOL)
    assert rig.trader.book.orders[stop.id].purpose == Purpose.GUARD
    assert rig.trader.account.foreign == ()


async def test_an_exit_the_exchange_executed_despite_a_429_closes_the_position_as_that_exit():
    rig = await _entered(FakeClock())
    rig.strategy.exits[SYMBOL] = "scripted exit"
    rig.paper.inject("create_order", _too_many_requests(), after=True)

    await rig.cycles(3)

    assert SYMBOL not in rig.trader.book.positions and rig.held(SYMBOL) == 0
    [trade] = rig.store.trades(rig.trader.label)
    assert trade.reason == Purpose.EXIT  # the bot's exit, not "balance gone (sold outside...)"


async def test_an_order_of_ours_placed_while_the_bot_was_down_is_adopted_after_a_restart(
    tmp_path,
):
    clock = FakeClock()
    first = await _entered(clock, Store.in_dir(tmp_path))
    cid = first.trader.book.new_client_id(Purpose.ENTRY)
    await first.trader.close()
    first.store.close()
    resting = await _limit_buy(first, cid)  # placed, its answer lost, its record dropped

    second = make_rig(clock, paper=first.paper, store=Store.in_dir(tmp_path), rate_limit=0)
    await second.trader.start()
    await second.cycles(2)

    tracked = second.trader.book.orders[resting.id]
    assert tracked.purpose == Purpose.ENTRY and tracked.confirmed
    assert second.trader.account.foreign == ()
    assert len(second.of(OrderAdopted)) == 1  # announced once, not at every sync


async def test_an_open_order_of_ours_with_a_purpose_its_id_does_not_name_is_cancelled_once():
    rig = await _entered(FakeClock())
    resting = await _limit_buy(rig, rig.trader.book.new_client_id("lost purpose"))

    await rig.cycles(2)

    assert [o.id for o in rig.open_orders() if o.id == resting.id] == []
    [adopted] = rig.of(OrderAdopted)
    assert adopted.cancelling and adopted.purpose == ""
    assert resting.id not in rig.trader.book.orders


async def test_the_owners_orders_and_another_bot_instances_are_never_adopted_nor_touched():
    rig = await _entered(FakeClock())
    other = Book(
        "paper",
        store=Store(),
        clock=rig.clock,
        notify=discard,
        quote="USDT",
        markets=lambda: rig.connector.markets,
    )
    theirs = await _limit_buy(rig, other.new_client_id(Purpose.ENTRY))
    owners = await _limit_buy(rig, "user-order-1", below=0.8)

    await rig.cycles(2)
    await rig.trader.account.sync()  # with the feed healthy, a cycle may skip the list

    assert {theirs.id, owners.id} <= {o.id for o in rig.open_orders()}
    assert {o.id for o in rig.trader.account.foreign} == {theirs.id, owners.id}
    assert rig.of(OrderAdopted) == []


def test_client_ids_keep_their_account_tag_across_runs_and_differ_between_stores(tmp_path):
    def book(store: Store) -> Book:
        return Book(
            "acct", store=store, clock=FakeClock(), notify=discard, quote="USDT", markets=dict
        )

    store = Store.in_dir(tmp_path)
    first = book(store).new_client_id(Purpose.ENTRY)
    again = book(store)
    assert again.made_here(first)  # a restart knows its earlier runs' orders
    assert not book(Store()).made_here(first)  # another instance (another DATA_DIR) does not
    assert not again.made_here("user-order-1") and not again.made_here(None)



def test_a_kill_sells_the_coins_an_adopted_stop_held():
    async def scenario(clock):  # on virtual time: the 429 slows the pacer, which then waits
        rig = await _entered(clock)
        [guard] = rig.trader.book.open_orders(symbol=SYMBOL, purpose=Purpose.GUARD)
        await rig.trader.router.cancel(guard)
        rig.paper.inject("create_order", _too_many_requests(), after=True)
        for _ in range(2):  # the stop rests at the exchange, its placement answered 429
            await rig.trader.run_cycle()
            await clock.sleep(60.0)
        rig.trader.failsafe.kill_patience = 0.0  # one round, then the background retry

        result = await rig.trader.kill()

        assert result.flat and rig.held(SYMBOL) == 0 and rig.stops() == []
        await rig.trader.close()

    run_simulated(scenario)
