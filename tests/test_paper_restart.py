"""A paper account survives a restart: the real Trader on a PaperExchange kept under DATA_DIR,
stopped and built again on the same files, finds the same positions, balances, open orders and
closed trades, sells nothing "outside the bot", and its resting stop still triggers where the
market's path reaches it. The app's own wiring (build_venues + app.build) does the same."""

from __future__ import annotations

import io

from chatbot.app import Bot, build
from chatbot.config import load_settings
from chatbot.venues import build_venues
from sim.clock import FakeClock
from tests.engine_support import ScriptedStrategy, make_rig
from tests.test_paper_stops import ETH, stop_market
from trading.events import TradeClosed
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.store import Store
from trading.venues.market_sim import SyntheticFeed
from trading.venues.paper import PaperExchange
from trading.venues.paper_state import PaperState, state_path

SOL = "SOL/USDT"
SLIPPAGE = 0.0005


def _rig(clock: FakeClock, tmp_path, strategy: ScriptedStrategy):
    state = PaperState(state_path(tmp_path, "paper", "MAIN"))
    paper = PaperExchange(clock=clock, markets=12, state=state)
    paper.stop_types = ()  # the test rests its own stop; the bot checks its stops itself
    return make_rig(clock, strategy=strategy, store=Store.in_dir(tmp_path), paper=paper)


def _seen(rig) -> tuple:
    """Everything a restart must keep: positions, the account, its orders, the closed trades."""
    return (
        dict(rig.trader.book.positions),
        rig.paper.peek_balance(),
        rig.paper.order_log,
        rig.store.trades(rig.trader.label),
    )


async def test_a_paper_trader_restarted_on_its_data_dir_continues_exactly(tmp_path):
    clock = FakeClock()
    strategy = ScriptedStrategy([ETH, SOL])
    first = _rig(clock, tmp_path, strategy)
    await first.trader.start()
    await first.cycles(1)
    strategy.entries, strategy.exits = [], {SOL: "scripted exit"}
    await first.cycles(1)  # SOL sold: a closed trade with its PnL
    strategy.exits = {}
    price = first.paper.price(ETH)
    held = first.trader.book.positions[ETH].amount
    limit = OrderRequest(ETH, Side.BUY, OrderType.LIMIT, 0.01, "l1", price=round(price * 0.8, 2))
    await first.paper.create_order(limit)
    stop = round(price * 0.97, 2)
    placed = clock.time()
    await first.paper.create_order(stop_market(held, stop))
    before = _seen(first)
    assert set(before[0]) == {ETH} and len(before[3]) == 1
    first.store.close()
    await first.paper.close()
    clock.advance(2 * 3600)  # down over midnight: another day for the market if not kept

    second = _rig(clock, tmp_path, strategy)
    await second.trader.start()
    await second.trader.sync()
    await second.trader.sync()  # a shortfall is acted on at the second sync

    assert _seen(second) == before
    assert second.of(TradeClosed) == []
    assert [o.client_order_id for o in second.open_orders(stops=True)] == ["l1", "s1"]

    # The stop triggers where the market's own path (as if never restarted) first reaches it.
    path = SyntheticFeed(seed=1, markets=12, clock=FakeClock())
    touch = path.first_touch(ETH, stop, placed, placed + 7 * 86_400)
    assert touch is not None and touch.timestamp > clock.time()
    clock.advance(touch.timestamp + 60 - clock.time())
    await second.paper.advance()
    [filled] = [o for o in second.paper.order_log if o.client_order_id == "s1"]
    assert filled.status is OrderStatus.CLOSED and filled.filled == held
    assert filled.average == min(touch.bid, stop) * (1 - SLIPPAGE)
    second.store.close()
    await second.paper.close()


# ---------------------------------------------------------------- the app's wiring


def _app(tmp_path, clock: FakeClock) -> Bot:
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "HEALTH_PORT": "off", "PAPER_MARKETS": "12"}
    )
    venues = build_venues(settings, paper_clock=clock)
    return build(settings, venues, clock=clock, out=io.StringIO())


async def _shut(bot: Bot) -> None:
    for trader in bot.traders:
        await trader.connector.close()
    await bot.http.aclose()
    bot.store.close()


async def test_a_restart_of_the_apps_paper_account_sells_nothing_outside_the_bot(tmp_path):
    clock = FakeClock()
    bot = _app(tmp_path, clock)
    [trader] = bot.traders
    await trader.start()
    assert (await bot.dispatcher.handle("/buy ETH 100", "owner")).ok
    held = dict(trader.book.positions)
    balance = trader.connector.venue.peek_balance()
    await _shut(bot)
    clock.advance(60)

    bot = _app(tmp_path, clock)
    [trader] = bot.traders
    trader.restore()
    await trader.start()
    await trader.sync()
    await trader.sync()

    assert trader.book.positions == held
    assert bot.store.trades(trader.label) == []  # no "balance gone (sold outside the bot)"
    assert trader.balance == balance
    await _shut(bot)
