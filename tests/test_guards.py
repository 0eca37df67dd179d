"""Protection that outlives the process: every position's stop rests at the exchange, so the
exchange sells when the price slides through it while the bot is dead, and the bot, on restart,
closes the position once and says so. Against the real ccxt binance client and the loopback
fake Binance, and against the paper exchange in-process."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from sim.clock import FakeClock
from sim.fakes.binance import FakeBinance
from tests.engine_support import SETTINGS, ScriptedStrategy, make_rig
from trading.connector import Connector
from trading.engine import Trader
from trading.errors import Transient
from trading.events import TradeClosed
from trading.guards import moved_stop
from trading.models import OrderRequest, OrderType, Position, Side
from trading.modes import Mode
from trading.risk import Level
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.paper import PaperExchange

STOP_REASON = "stop-loss (on exchange)"


class BinanceBot:
    """One process of the bot on the fake Binance, remembering in a store file."""

    def __init__(self, fake: FakeBinance, path, settings=SETTINGS) -> None:
        self.clock = FakeClock(time.time())  # the fake stamps tickers with the real time
        self.events: list = []
        self.store = Store(path)
        venue = CcxtVenue(
            "binance", "MASTER", api_key=fake.api_key, secret=fake.secret,
            config=fake.ccxt_config(),
        )  # fmt: skip
        self.connector = Connector(venue, clock=self.clock, notify=self.events.append)
        self.trader = Trader(
            self.connector,
            store=self.store,
            strategy=ScriptedStrategy([]),
            settings=settings,
            clock=self.clock,
            notify=self.events.append,
        )

    async def die(self) -> None:
        """The host dies: no exit, no shutdown; only the sockets go."""
        await self.connector.close()
        self.store.close()

    def closed(self) -> list[TradeClosed]:
        return [e for e in self.events if isinstance(e, TradeClosed)]


@pytest.fixture
async def fake():
    async with FakeBinance() as server:  # ETH at 3,000
        yield server


async def test_a_manual_buy_on_binance_is_protected_while_the_bot_is_dead(fake, tmp_path):
    path = tmp_path / "bot.sqlite3"
    first = BinanceBot(fake, path)
    await first.trader.start()
    bought = await first.trader.buy("ETH/USDT", 300.0, stop=Level(2_900.0))
    assert bought.ok and bought.stop_loss == 2_900.0 and bought.guard == "exchange"
    [stop] = [o for o in fake.orders.values() if o["type"].startswith("STOP_LOSS")]
    assert stop["side"] == "SELL" and float(stop["stopPrice"]) == 2_900.0
    await first.die()

    fake.set_price("ETHUSDT", 2_700.0)  # through the stop while nobody runs: Binance sells

    second = BinanceBot(fake, path)
    await second.trader.start()
    assert second.trader.book.positions == {}
    assert [(e.symbol, e.reason) for e in second.closed()] == [("ETH/USDT", STOP_REASON)]
    await second.trader.sync()
    await second.trader.run_cycle()
    assert [t.reason for t in second.store.trades("binance:master")] == [STOP_REASON]  # once
    sells = [o for o in fake.orders.values() if o["side"] == "SELL"]
    assert len(sells) == 1  # the bot never sold those coins again
    assert fake.most_live_stops("ETHUSDT") == 1
    await second.die()


async def test_a_trailing_stop_follows_the_price_up_and_never_two_rest_at_once(fake, tmp_path):
    settings = replace(SETTINGS, trailing_stop_pct=5.0)
    bot = BinanceBot(fake, tmp_path / "bot.sqlite3", settings)
    await bot.trader.start()
    far = Level(100.0, percent=True)  # no take-profit in the way
    assert (await bot.trader.buy("ETH/USDT", 300.0, stop=Level(5.0, percent=True), target=far)).ok
    first = bot.trader.book.positions["ETH/USDT"].stop_loss
    for price in (3_100.0, 3_300.0, 3_600.0, 3_500.0):
        fake.set_price("ETHUSDT", price)
        bot.clock.advance(60.0)
        await bot.trader.run_cycle()
    stop = bot.trader.book.positions["ETH/USDT"].stop_loss
    assert stop == pytest.approx(3_600.0 * 0.95, rel=1e-4)  # followed to the top, not back
    assert stop > first
    live = [
        o for o in fake.orders.values() if o["type"].startswith("STOP") and o["status"] == "NEW"
    ]
    assert [float(o["stopPrice"]) for o in live] == [pytest.approx(stop, abs=0.01)]
    assert fake.most_live_stops("ETHUSDT") == 1  # cancelled before each replacement
    fake.set_price("ETHUSDT", 3_300.0)  # through the trailed stop
    bot.clock.advance(60.0)
    await bot.trader.run_cycle()
    assert bot.trader.book.positions == {}
    assert bot.closed()[-1].pnl > 0  # the trail locked a gain in
    await bot.die()


async def test_the_paper_exchange_sells_at_the_resting_stop_while_no_bot_runs(tmp_path):
    clock = FakeClock()
    store = Store(tmp_path / "bot.sqlite3")
    rig = make_rig(clock, strategy=ScriptedStrategy(["ETH/USDT"], stop=0.02), store=store)
    await rig.trader.start()
    await rig.trader.run_cycle()
    [stop] = rig.stops()
    paper = rig.paper
    store.close()  # the process dies here

    paper.shock("ETH/USDT", -15)
    clock.advance(600.0)  # ten minutes with no bot
    await paper.advance()

    assert rig.held("ETH/USDT") == 0
    store = Store(tmp_path / "bot.sqlite3")
    again = make_rig(clock, strategy=ScriptedStrategy([]), store=store, paper=paper)
    await again.trader.start()
    assert again.trader.book.positions == {}
    assert [(e.symbol, e.reason) for e in again.of(TradeClosed)] == [("ETH/USDT", STOP_REASON)]
    assert stop.stop_price is not None


async def test_stop_with_a_banned_held_symbol_exits_it_too():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT", "SOL/USDT"]))
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert (await rig.trader.ban("ETH/USDT")).ok
    rig.strategy.entries = []

    result = await rig.trader.stop()
    assert result.ok and result.exiting == 2
    rig.paper.shock("ETH/USDT", 1.0)  # the resting limit sells at the touch fill
    rig.paper.shock("SOL/USDT", 1.0)
    await rig.cycles(6)

    assert rig.trader.mode is Mode.STOPPED
    assert rig.trader.book.positions == {}
    assert rig.held("ETH/USDT") == 0 and rig.held("SOL/USDT") == 0


async def test_stops_hold_while_the_account_sync_fails_for_its_whole_limit():
    """The account endpoint fails until just before escalation; the price falls through the
    stop meanwhile: sold (by the resting stop; by the bot itself where none can rest)."""
    for resting in (True, False):
        rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
        if not resting:
            rig.paper.stop_types = ()
        await rig.trader.start()
        await rig.trader.run_cycle()
        rig.paper.inject("fetch_balance", Transient("account endpoint down"), count=-1)
        rig.strategy.entries = ["SOL/USDT"]
        rig.paper.shock("ETH/USDT", -20)
        await rig.cycles(4)  # 240 s of the 300 s limit

        assert rig.held("ETH/USDT") == 0, resting
        assert rig.trader.mode is Mode.RUNNING
        assert rig.held("SOL/USDT") == 0  # entries wait for a good sync
        rig.paper.clear_faults()
        rig.strategy.entries = []
        await rig.cycles(1)  # the account reads again: the book learns what the exchange did
        assert rig.trader.book.positions == {}
        reasons = [e.reason for e in rig.of(TradeClosed)]
        assert reasons == ([STOP_REASON] if resting else ["stop-loss"])


async def test_a_manual_position_keeps_its_stop_and_target_but_no_signal_sells_it():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy([]))
    await rig.trader.start()
    bought = await rig.trader.buy("ETH/USDT", 100.0)
    assert bought.ok
    position = rig.trader.book.positions["ETH/USDT"]
    assert position.manual
    assert position.stop_loss == pytest.approx(bought.price * 0.95, rel=1e-3)
    assert position.take_profit == pytest.approx(bought.price * 1.10, rel=1e-3)
    assert [o.symbol for o in rig.stops()] == ["ETH/USDT"]

    rig.strategy.exits = {"ETH/USDT": "1h trend turned down"}
    await rig.cycles(3)
    assert "ETH/USDT" in rig.trader.book.positions  # the owner's: no signal sells it

    rig.paper.shock("ETH/USDT", 12)  # through the take-profit
    await rig.cycles(1)
    assert rig.trader.book.positions == {}
    assert rig.of(TradeClosed)[-1].reason == "take-profit"
    assert [o for o in rig.paper.order_log if o.side is Side.SELL and o.filled]  # sold once


async def test_a_stop_on_the_wrong_side_is_refused_before_anything_is_sent():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy([]))
    await rig.trader.start()
    price = rig.paper.price("ETH/USDT")

    refused = await rig.trader.buy("ETH/USDT", 100.0, stop=Level(price * 2))

    assert not refused.ok and "must be below the price" in refused.reason
    assert rig.created() == 0 and rig.trader.book.positions == {}


async def test_the_exchange_dead_man_guards_only_the_bots_working_orders():
    """Armed while the bot's own limit exits rest, disarmed once they are gone; never while a
    protective stop (a stop's OCO exit too) or an order of the user's rests (it would cancel
    those too)."""
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert rig.stops() and not rig.trader.connector.health.dead_man_armed_until

    await rig.trader.stop()  # the stop lifts the resting stop and rests an OCO: limit + stop
    await rig.trader.run_cycle()
    [oco] = rig.open_orders()
    assert oco.type is OrderType.OCO and not rig.trader.connector.health.dead_man_armed_until

    rig.paper.stop_types = ()  # an exchange without stops: the exit is a plain limit
    rig.paper.shock("ETH/USDT", -1.0)  # re-priced: the OCO goes, a limit comes
    await rig.trader.run_cycle()
    [limit] = rig.open_orders()
    assert limit.type is OrderType.LIMIT and rig.trader.connector.health.dead_man_armed_until

    rig.paper.shock("ETH/USDT", 1.0)  # the limit exit fills
    await rig.cycles(2)
    assert rig.trader.mode is Mode.STOPPED and rig.open_orders() == []
    assert rig.trader.connector.health.dead_man_armed_until is None  # disarmed, not left to fire


async def test_the_dead_man_is_never_armed_over_an_order_of_the_users():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
    await rig.trader.start()
    await rig.trader.run_cycle()
    price = rig.paper.price("SOL/USDT")
    users = await rig.paper.create_order(
        OrderRequest("SOL/USDT", Side.BUY, OrderType.LIMIT, 1.0, "mine-1", price=price * 0.5)
    )
    await rig.trader.stop()
    await rig.cycles(2)

    assert rig.trader.connector.health.dead_man_armed_until is None
    assert (await rig.paper.fetch_order(users.id, "SOL/USDT")).is_open


async def test_the_cooldown_runs_on_the_markets_clock_and_unlock_clears_it():
    """In the paper demo the market runs 300 times faster than the bot's clock: a cooldown of
    1,800 s is six market minutes, not six market days, and /locks shows what is left."""
    bot_clock = FakeClock()
    market_clock = FakeClock()
    paper = PaperExchange(clock=market_clock, markets=12)
    settings = replace(SETTINGS, reentry_cooldown_seconds=1800.0)
    strategy = ScriptedStrategy(["ETH/USDT"])
    rig = make_rig(bot_clock, strategy=strategy, paper=paper, settings=settings)
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert (await rig.trader.sell("ETH/USDT")).ok

    [lock] = rig.trader.locks()
    assert (lock.symbol, lock.kind) == ("ETH/USDT", "cooldown")
    assert lock.seconds_left == pytest.approx(1800.0)
    refused = await rig.trader.run_cycle()  # the strategy still wants ETH: held back
    assert refused is None and "ETH/USDT" not in rig.trader.book.positions
    assert (await rig.trader.buy("ETH/USDT", 100.0)).ok  # the owner's own buy is not blocked
    assert (await rig.trader.sell("ETH/USDT")).ok

    market_clock.advance(1801.0)  # market time only: the bot's clock has not moved
    assert rig.trader.locks() == ()
    await rig.trader.run_cycle()
    assert "ETH/USDT" in rig.trader.book.positions

    assert (await rig.trader.sell("ETH/USDT")).ok
    cleared = await rig.trader.unlock("ETH/USDT")
    assert cleared.ok and cleared.cleared == ("cooldown",) and rig.trader.locks() == ()
    nothing = await rig.trader.unlock("SOL/USDT")
    assert not nothing.ok and "no cooldown" in nothing.reason


def test_break_even_and_trailing_only_ever_move_the_stop_up():
    position = Position("paper:main", "ETH/USDT", 1.0, 100.0, 0.0, stop_loss=95.0)
    even = replace(SETTINGS, break_even_at_pct=3.0)
    assert moved_stop(position, 102.0, even) is None  # not far enough up yet
    assert moved_stop(position, 103.0, even) == 100.0  # to the entry
    trail = replace(SETTINGS, trailing_stop_pct=5.0)
    assert moved_stop(position, 99.0, trail) is None  # 94.05 would be down
    assert moved_stop(position, 110.0, trail) == pytest.approx(104.5)
    assert moved_stop(replace(position, stop_loss=104.0), 110.0, trail) is None  # too small a step


async def test_a_stop_cancelled_outside_the_bot_is_placed_again_at_the_next_cycle():
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
    await rig.trader.start()
    await rig.trader.run_cycle()
    [stop] = rig.stops()
    await rig.paper.cancel_order(stop.id, "ETH/USDT")  # by hand, in the exchange's app

    await rig.cycles(1)

    [again] = rig.stops()
    assert again.id != stop.id and again.stop_price == stop.stop_price
    assert rig.trader.guards.replaced == 1
    [view] = rig.trader.info().positions
    assert view.guard == "exchange"


async def test_a_stop_whose_placement_timed_out_is_settled_and_rests_once_within_a_few_cycles():
    """One timeout on the stop's placement: the bot never sends it twice blindly; once the
    reconciliation has settled it (never placed), the stop is placed again, and only one rests."""
    rig = make_rig(FakeClock(), strategy=ScriptedStrategy(["ETH/USDT"]))
    rig.paper.stop_types = ()
    await rig.trader.start()
    await rig.trader.run_cycle()
    assert rig.stops() == []
    del rig.paper.stop_types  # the venue rests stops again
    rig.paper.inject("create_order", Transient("timeout"), count=1)
    rig.strategy.entries = []

    await rig.cycles(1)
    assert rig.stops() == []  # its outcome is unknown: nothing sent again yet
    await rig.cycles(3)

    assert len(rig.stops()) == 1
    assert rig.trader.guards.on_exchange("ETH/USDT")
