"""The real ccxt kraken client, through CcxtVenue (and the Connector and a Trader where they
matter), against the loopback fake of Kraken: its asset names, its nonce, its error strings,
its answers without a status, its request counter and its dead man's switch."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from sim.clock import FakeClock
from sim.fakes.kraken import (
    ADD_ORDER,
    ASSET_PAIRS,
    ASSETS_PATH,
    BALANCE_EX,
    CLOSED_ORDERS,
    OHLC,
    OPEN_ORDERS,
    QUERY_ORDERS,
    TICKER,
    TIME,
    FakeKraken,
)
from tests.engine_support import SETTINGS, ScriptedStrategy
from trading.connector import Connector
from trading.engine import Trader
from trading.errors import (
    ClockRejected,
    Fatal,
    InsufficientFunds,
    OrderNotFound,
    RateLimited,
    Rejected,
    Transient,
)
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.modes import Mode
from trading.store import Store
from trading.venues.ccxt_venue import CcxtVenue


@pytest.fixture
def clock():
    return FakeClock(time.time())  # the fake's clock too: its counter decays on it


@pytest.fixture
async def fake(clock):
    async with FakeKraken(clock=clock) as server:
        yield server


def kraken_venue(fake: FakeKraken, *, secret: str | None = None, **config) -> CcxtVenue:
    return CcxtVenue(
        "kraken", "MASTER", api_key=fake.api_key, secret=secret or fake.secret,
        config={**fake.ccxt_config(), **config},
    )  # fmt: skip


@pytest.fixture
async def venue(fake):
    v = kraken_venue(fake)
    try:
        yield v
    finally:
        await v.close()


def limit_buy(client_id: str, amount: float = 0.01, price: float = 40_000.0) -> OrderRequest:
    return OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, amount, client_id, price=price)


def market(side: Side, amount: float, client_id: str, symbol: str = "ETH/USDT") -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, amount, client_id)


# ------------------------------------------------------------------------------ market data


async def test_markets_carry_common_codes_for_kraken_asset_names_with_steps_and_minimums(venue):
    markets = await venue.load_markets()
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "DOGE/USDT", "BTC/USD", "SOL/USDT"}
    btc = markets["BTC/USDT"]  # XXBT / USDT, listed as XBTUSDT
    assert (btc.base, btc.quote, btc.active) == ("BTC", "USDT", True)
    assert (btc.min_amount, btc.min_cost) == (0.00005, 0.5)
    assert (btc.amount_step, btc.price_step) == (1e-8, 0.1)
    assert markets["DOGE/USDT"].base == "DOGE"  # XXDG
    assert markets["BTC/USD"].quote == "USD"  # ZUSD
    assert markets["SOL/USDT"].active is False  # cancel_only


async def test_loading_markets_reads_assets_pairs_and_the_server_time(venue, fake):
    await venue.load_markets()
    assert {path for _, path in fake.requests} == {ASSETS_PATH, ASSET_PAIRS, TIME}


async def test_every_ticker_comes_from_one_call_with_bid_ask_and_quote_volume(venue, fake):
    await venue.load_markets()
    tickers = await venue.fetch_tickers()
    assert venue.has_bulk_tickers and fake.calls(TICKER) == 1
    btc = tickers["BTC/USDT"]
    assert (btc.last, btc.bid, btc.ask) == (50_000.0, 49_999.9, 50_000.1)
    assert btc.quote_volume == pytest.approx(5_000_000.0)
    assert btc.change_pct == pytest.approx(1.5, abs=0.01)  # from Kraken's open and last
    assert len(tickers) == 5


async def test_tickers_for_some_symbols_return_only_those(venue):
    await venue.load_markets()
    tickers = await venue.fetch_tickers(["ETH/USDT", "DOGE/USDT"])
    assert set(tickers) == {"ETH/USDT", "DOGE/USDT"}


async def test_candles_are_the_latest_ones_with_their_open_time_in_seconds(venue, fake):
    candles = await venue.fetch_ohlcv("ETH/USDT", "1h", 5)
    assert len(candles) == 5  # of the 720 Kraken answers
    assert [b.ts - a.ts for a, b in itertools.pairwise(candles)] == [3600.0] * 4
    assert candles[-1].ts <= fake.clock.time() < candles[-1].ts + 3600
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
    assert fake.calls(OHLC) == 1


# --------------------------------------------------------------------------- account, orders


async def test_balance_comes_from_balance_ex_with_what_open_orders_hold_not_free(venue, fake):
    balance = await venue.fetch_balance()
    assert balance.free_of("USDT") == 10_000.0 and balance.total_of("BTC") == 0.5  # XXBT
    await venue.create_order(limit_buy("cbe0held0000000001"))
    balance = await venue.fetch_balance()
    assert balance.total_of("USDT") == 10_000.0
    assert balance.free_of("USDT") == pytest.approx(10_000.0 - 400.0 * 1.0026)
    assert fake.calls(BALANCE_EX) == 2


async def test_limit_order_carries_our_client_id_and_is_found_again_by_it(venue, fake):
    order = await venue.create_order(limit_buy("cbe0limit000000001"))
    assert (order.client_order_id, order.status, order.price) == (
        "cbe0limit000000001",
        OrderStatus.OPEN,
        40_000.0,
    )
    assert fake.order("cbe0limit000000001").txid == order.id  # sent as cl_ord_id
    [listed] = await venue.fetch_open_orders()
    assert (listed.id, listed.client_order_id, listed.symbol) == (
        order.id,
        "cbe0limit000000001",
        "BTC/USDT",
    )
    found = await venue.find_order("cbe0limit000000001", "BTC/USDT")
    assert found is not None and found.id == order.id and found.is_open


async def test_a_market_order_is_read_back_at_once_since_kraken_answers_it_without_a_status(
    venue, fake
):
    placed = await venue.create_order(market(Side.BUY, 0.5, "cbe0market00000001"))
    # AddOrder answers a txid and a description only: the venue reads the order back by id.
    assert (placed.status, placed.filled, placed.average) == (OrderStatus.CLOSED, 0.5, 3_000.0)
    assert placed.client_order_id == "cbe0market00000001"
    assert placed.fee_cost == pytest.approx(1_500.0 * 0.0026) and placed.fee_currency == "USDT"
    assert fake.calls(QUERY_ORDERS) == 1
    found = await venue.find_order("cbe0market00000001", "ETH/USDT")
    assert found is not None and found.id == placed.id and found.filled == 0.5
    assert (await venue.fetch_balance()).total_of("ETH") == 0.5


async def test_a_market_order_whose_read_back_fails_is_still_answered_as_placed(venue, fake):
    fake.fail_error(QUERY_ORDERS, "EService:Unavailable")
    placed = await venue.create_order(market(Side.BUY, 0.5, "cbe0market00000002"))
    assert (placed.status, placed.filled) == (OrderStatus.OPEN, 0.0)  # for the sync to settle
    assert placed.id == fake.order("cbe0market00000002").txid


async def test_find_order_is_none_for_an_id_the_exchange_never_saw(venue, fake):
    await venue.create_order(limit_buy("cbe0seen0000000001"))
    assert await venue.find_order("cbe0never000000001", "BTC/USDT") is None
    assert fake.calls(OPEN_ORDERS) == 1 and fake.calls(CLOSED_ORDERS) == 1


async def test_a_resting_limit_fills_when_the_price_crosses_it(venue, fake):
    order = await venue.create_order(limit_buy("cbe0rest0000000001", price=45_000.0))
    fake.set_price("XBTUSDT", 44_000.0)
    filled = await venue.fetch_order(order.id, "BTC/USDT")
    assert (filled.status, filled.filled, filled.average) == (OrderStatus.CLOSED, 0.01, 45_000.0)
    assert await venue.fetch_open_orders() == []


async def test_cancel_then_cancel_again_or_a_filled_order_is_order_not_found(venue, fake):
    order = await venue.create_order(limit_buy("cbe0cancel00000001"))
    assert await venue.cancel_order(order.id, "BTC/USDT") is None  # Kraken answers a count
    assert (await venue.fetch_order(order.id, "BTC/USDT")).status is OrderStatus.CANCELED
    with pytest.raises(OrderNotFound, match="EOrder:Unknown order"):
        await venue.cancel_order(order.id, "BTC/USDT")
    filled = await venue.create_order(market(Side.BUY, 0.1, "cbe0filled00000001"))
    connector = Connector(venue, clock=fake.clock)
    assert not await connector.cancel(filled.id, "ETH/USDT")  # gone: nothing to cancel


async def test_the_dead_man_switch_arms_disarms_and_cancels_every_order_when_it_fires(
    venue, fake, clock
):
    assert venue.has_cancel_all_after
    await venue.create_order(limit_buy("cbe0deadman0000001"))
    await venue.cancel_all_after(60)
    assert fake.dead_man_at == pytest.approx(clock.time() + 60)
    await venue.cancel_all_after(0)
    assert fake.dead_man_at is None
    clock.advance(120)
    assert len(await venue.fetch_open_orders()) == 1  # disarmed: nothing happened

    await venue.cancel_all_after(60)
    clock.advance(61)  # the bot went quiet
    assert await venue.fetch_open_orders() == []
    assert fake.order("cbe0deadman0000001").status == "canceled" and fake.dead_man_fired == 1


# ------------------------------------------------------------------- what errors mean


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("EService:Unavailable", Transient),
        ("EService:Busy", Transient),
        ("EGeneral:Internal error", Transient),
        ("EAPI:Rate limit exceeded", RateLimited),
        ("EAPI:Invalid nonce", ClockRejected),
    ],
)
async def test_kraken_error_strings_are_classified_by_meaning(venue, fake, error, kind):
    fake.fail_error(BALANCE_EX, error)
    with pytest.raises(kind) as caught:
        await venue.fetch_balance()
    assert type(caught.value) is kind and error in caught.value.message


async def test_a_wrong_secret_is_fatal_and_says_the_key_or_its_secret_is_wrong(fake):
    wrong = kraken_venue(fake, secret="d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")
    try:
        with pytest.raises(Fatal, match="EAPI:Invalid signature") as caught:
            await wrong.fetch_balance()
    finally:
        await wrong.close()
    assert "the API key or its secret is wrong" in caught.value.message
    assert fake.secret not in str(caught.value)


async def test_an_order_beyond_the_funds_is_rejected_not_in_doubt(venue, fake):
    with pytest.raises(Rejected, match="EOrder:Insufficient funds") as caught:
        await venue.create_order(market(Side.BUY, 5.0, "cbe0toomuch0000001"))  # 15,000 USDT
    assert type(caught.value) is InsufficientFunds  # a Rejected: never placed
    assert fake.orders == {}


async def test_a_refused_nonce_is_retried_once_with_a_fresh_one_after_a_clock_resync(venue, fake):
    connector = Connector(venue, clock=fake.clock)
    await connector.sync()  # measures the clock once
    times, reads = fake.calls(TIME), fake.calls(OPEN_ORDERS)
    fake.fail_error(OPEN_ORDERS, "EAPI:Invalid nonce")
    state = await connector.sync()
    assert state.balance.total_of("USDT") == 10_000.0
    assert fake.calls(OPEN_ORDERS) == reads + 2 and fake.calls(TIME) == times + 1


async def test_the_nonce_rises_across_concurrent_calls_so_none_is_refused(venue, fake):
    await venue.load_markets()
    orders = [limit_buy(f"cbe0together{i:06d}", amount=0.001) for i in range(20)]
    calls = [venue.create_order(o) for o in orders] + [venue.fetch_balance() for _ in range(5)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(fake.open_orders()) == 20
    assert fake.nonces == sorted(set(fake.nonces))


async def test_past_the_request_counter_kraken_says_slow_down_until_it_decays(venue, fake, clock):
    await venue.load_markets()
    for _ in range(15):  # Starter tier: 15, minus 0.33 a second
        await venue.fetch_open_orders()
    with pytest.raises(RateLimited, match="EAPI:Rate limit exceeded"):
        await venue.fetch_balance()
    await venue.create_order(limit_buy("cbe0uncounted00001"))  # orders do not count
    clock.advance(4)  # decays by 1.32
    await venue.fetch_balance()


async def test_reads_ride_out_kraken_being_unavailable(venue, fake):
    connector = Connector(venue, clock=fake.clock)
    fake.fail_error(BALANCE_EX, "EService:Unavailable", times=2)
    state = await connector.sync()
    assert state.balance.free_of("USDT") == 10_000.0
    assert fake.calls(BALANCE_EX) == 3


# ------------------------------------------------------------------- the real engine


class KrakenBot:
    """The bot on the fake Kraken: the real Trader, Connector and ccxt client."""

    def __init__(self, fake: FakeKraken, clock: FakeClock, path, **config) -> None:
        self.events: list = []
        self.store = Store(path)
        self.venue = kraken_venue(fake, **config)
        self.connector = Connector(self.venue, clock=clock, notify=self.events.append)
        self.trader = Trader(
            self.connector,
            store=self.store,
            strategy=ScriptedStrategy([]),
            settings=SETTINGS,
            clock=clock,
            notify=self.events.append,
        )

    async def close(self) -> None:
        await self.connector.close()
        self.store.close()


async def test_a_trader_on_kraken_buys_by_hand_then_a_kill_leaves_it_flat(fake, clock, tmp_path):
    bot = KrakenBot(fake, clock, tmp_path / "bot.sqlite3")
    try:
        await bot.trader.start()
        assert bot.trader.started
        assert (await bot.trader.sync()).ok

        bought = await bot.trader.buy("ETH/USDT", 300.0)

        # Filled and guarded at once, though AddOrder's answer does not say it filled; the bot
        # watches the stop itself (it places no resting stops on Kraken).
        assert bought.ok and bought.amount > 0 and bought.guard == "bot"
        assert fake.balances["XETH"] == pytest.approx(bought.amount)
        assert list(bot.trader.book.positions) == ["ETH/USDT"]
        clock.advance(60)
        await bot.trader.run_cycle()
        assert list(bot.trader.book.positions) == ["ETH/USDT"]

        killed = await bot.trader.kill()

        assert killed.ok and killed.flat and bot.trader.mode is Mode.KILLED
        assert bot.trader.book.positions == {}
        assert fake.balances["XETH"] == pytest.approx(0.0, abs=1e-12)
        assert fake.open_orders() == []
        assert [o.side for o in fake.orders.values()] == ["buy", "sell"]
        [trade] = bot.store.trades("kraken:master")
        assert trade.symbol == "ETH/USDT" and trade.fees > 0  # Kraken's fees, in USDT
    finally:
        await bot.close()


async def test_a_buy_kraken_takes_without_answering_becomes_a_position_once_never_sent_twice(
    fake, clock, tmp_path
):
    bot = KrakenBot(fake, clock, tmp_path / "bot.sqlite3", timeout=300)  # ccxt's, in ms
    try:
        await bot.trader.start()
        fake.stall(ADD_ORDER)  # Kraken takes the order and its answer never comes back

        bought = await bot.trader.buy("ETH/USDT", 300.0)

        assert not bought.ok and "RequestTimeout" in bought.reason
        assert bot.trader.book.positions == {}
        fake.release(ADD_ORDER)  # ... and executes it after all
        for _ in range(200):
            if fake.orders:
                break
            await asyncio.sleep(0.01)
        [placed] = fake.orders.values()
        for _ in range(3):
            clock.advance(60)
            await bot.trader.run_cycle()
        assert list(bot.trader.book.positions) == ["ETH/USDT"]
        assert bot.trader.book.positions["ETH/USDT"].entry_order_id == placed.txid
        assert len(fake.orders) == 1 and fake.calls(ADD_ORDER) == 1
    finally:
        await bot.close()
