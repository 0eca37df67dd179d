"""Which venue each configured account gets, and what the wiring tells the operator."""

from __future__ import annotations

import logging

import pytest

from chatbot.config import load_settings
from chatbot.venues import build_venues, channel_refusal
from sim.clock import FakeClock
from sim.fakes.binance import ORDER, FakeBinance
from trading.models import OrderRequest, OrderStatus, OrderType, Side
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.paper import PaperExchange

LOG = logging.getLogger("test.venues")
NO_WAIT = {"timeout_on_exit": 0}  # venues never opened need not wait for TLS shutdown on close
KRAKEN_KEYS = {
    "KRAKEN_MASTER_API_KEY": "kraken-key-abcdefghijkl",
    "KRAKEN_MASTER_API_SECRET": "kraken-secret-abcdefghijkl",
}


@pytest.fixture
async def fake():
    async with FakeBinance() as server:
        yield server


@pytest.fixture
async def built(tmp_path):
    """Builds venues (their paper accounts kept under a temporary DATA_DIR) and closes them
    after the test."""
    venues = []

    def build(env: dict[str, str], **kwargs):
        settings = load_settings({"DATA_DIR": str(tmp_path), **env})
        result = build_venues(settings, log=LOG, **kwargs)
        venues.extend(result)
        return result

    yield build
    for v in venues:
        await v.close()


def binance_keys(fake: FakeBinance, account: str = "MASTER") -> dict[str, str]:
    return {
        f"BINANCE_{account}_API_KEY": fake.api_key,
        f"BINANCE_{account}_API_SECRET": fake.secret,
    }


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


async def test_the_default_is_one_paper_account_with_the_configured_balance(built):
    env = {"PAPER_BALANCE": "2500", "QUOTE_CURRENCY": "USDC", "PAPER_MARKETS": "5"}
    (venue,) = built(env, paper_clock=FakeClock())
    assert isinstance(venue, PaperExchange)
    assert (venue.name, venue.account) == ("paper", "MAIN")
    assert (await venue.fetch_balance()).free_of("USDC") == 2500.0
    assert len(await venue.load_markets()) == 5


async def test_dry_run_on_a_real_exchange_trades_on_paper_with_its_live_prices(built, fake, caplog):
    caplog.set_level(logging.INFO)
    env = {"EXCHANGES": "binance", "DRY_RUN": "true", **binance_keys(fake)}
    (venue,) = built(env, ccxt_config=fake.ccxt_config())
    assert isinstance(venue, PaperExchange)
    assert (venue.name, venue.account) == ("binance", "MASTER")
    await venue.load_markets()
    assert (await venue.fetch_tickers(["BTC/USDT"]))["BTC/USDT"].last == 50_000.0
    order = await venue.create_order(
        OrderRequest("BTC/USDT", Side.BUY, OrderType.MARKET, 0.01, "dry-1")
    )
    assert order.status is OrderStatus.CLOSED
    assert fake.calls(ORDER) == 0 and fake.orders == {}  # the real account is never touched
    assert "binance MASTER: DRY_RUN - live binance prices, simulated orders and balance" in (
        messages(caplog)
    )


async def test_paper_and_dry_run_accounts_are_kept_under_data_dir_and_continue(
    built, fake, tmp_path
):
    env = {"EXCHANGES": "paper,binance", "DRY_RUN": "true", **binance_keys(fake)}
    paper, dry = built(env, paper_clock=FakeClock(), ccxt_config=fake.ccxt_config())
    for venue, symbol in ((paper, "ETH/USDT"), (dry, "BTC/USDT")):
        await venue.load_markets()
        await venue.create_order(OrderRequest(symbol, Side.BUY, OrderType.MARKET, 0.01, "k1"))
    kept = [(v.peek_balance(), v.order_log) for v in (paper, dry)]
    for venue in (paper, dry):
        await venue.close()

    again = built(env, paper_clock=FakeClock(), ccxt_config=fake.ccxt_config())

    assert [(v.peek_balance(), v.order_log) for v in again] == kept
    assert all(v.restored for v in again) and fake.orders == {}
    assert sorted(p.name for p in (tmp_path / "paper").glob("*.sqlite3")) == [
        "binance-master.sqlite3",
        "paper-main.sqlite3",
    ]


async def test_dry_run_needs_no_credentials(built):
    (venue,) = built({"EXCHANGES": "kraken", "DRY_RUN": "true"}, ccxt_config=NO_WAIT)
    assert isinstance(venue, PaperExchange) and venue.name == "kraken"


async def test_live_with_credentials_is_the_real_account_through_ccxt(built, fake):
    env = {"EXCHANGES": "binance", "DRY_RUN": "false", **binance_keys(fake, "USER_ALICE")}
    (venue,) = built(env, ccxt_config=fake.ccxt_config())
    assert isinstance(venue, CcxtVenue)
    assert (venue.name, venue.account, venue.sandbox) == ("binance", "USER_ALICE", False)
    assert (await venue.fetch_balance()).free_of("USDT") == 10_000.0


async def test_live_with_sandbox_configured_uses_the_testnet(built, fake):
    env = {"EXCHANGES": "binance", "DRY_RUN": "false", "BINANCE_SANDBOX": "true"}
    (venue,) = built(env | binance_keys(fake), ccxt_config=fake.ccxt_config())
    assert isinstance(venue, CcxtVenue) and venue.sandbox


async def test_live_without_credentials_is_skipped_with_one_clear_line(built, caplog):
    env = {"EXCHANGES": "kraken", "DRY_RUN": "false"}
    assert built(env) == []
    assert (
        "kraken MASTER: credentials not configured "
        "(KRAKEN_MASTER_API_KEY, KRAKEN_MASTER_API_SECRET) - skipping"
    ) in messages(caplog)


async def test_one_real_exchange_only_warns_that_load_is_not_spread(built, caplog):
    env = {"EXCHANGES": "paper,kraken", "DRY_RUN": "false", **KRAKEN_KEYS}
    venues = built(env, ccxt_config=NO_WAIT, paper_clock=FakeClock())
    assert [v.name for v in venues] == ["paper", "kraken"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "every account trades on kraken" in warnings[0]


async def test_the_single_exchange_warning_can_be_suppressed(built, caplog):
    env = {"EXCHANGES": "kraken", "DRY_RUN": "false", "SUPPRESS_SINGLE_EXCHANGE_WARNING": "true"}
    built(env | KRAKEN_KEYS, ccxt_config=NO_WAIT)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_two_real_exchanges_do_not_warn(built, caplog):
    env = {"EXCHANGES": "kraken,binance", "DRY_RUN": "true"}
    assert len(built(env, ccxt_config=NO_WAIT)) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_dead_man_switch_of_every_account_is_logged(built, caplog, fake):
    caplog.set_level(logging.INFO)
    env = {"EXCHANGES": "kraken,binance", "DRY_RUN": "false", **KRAKEN_KEYS}
    built(env | binance_keys(fake), ccxt_config=NO_WAIT)
    lines = messages(caplog)
    assert "kraken:master: exchange-side cancel-all-after (dead man's switch): available" in lines
    assert (
        "binance:master: exchange-side cancel-all-after (dead man's switch): "
        "not available (only the in-process dead switch)"
    ) in lines


async def test_a_dry_run_dead_man_switch_is_simulated_and_says_what_live_would_have(built, caplog):
    caplog.set_level(logging.INFO)
    built({"EXCHANGES": "binance", "DRY_RUN": "true"}, ccxt_config=NO_WAIT)
    assert (
        "binance:master: exchange-side cancel-all-after (dead man's switch): "
        "simulated (live binance: not available)"
    ) in messages(caplog)


async def test_no_credential_ever_reaches_the_log(built, caplog, fake):
    caplog.set_level(logging.DEBUG)
    env = {"EXCHANGES": "kraken,binance", "DRY_RUN": "false", **KRAKEN_KEYS}
    venues = built(env | binance_keys(fake), ccxt_config=fake.ccxt_config())
    await venues[1].fetch_balance()
    for secret in (*KRAKEN_KEYS.values(), fake.api_key, fake.secret):
        assert secret not in caplog.text


LIVE = {"EXCHANGES": "kraken", "DRY_RUN": "false", **KRAKEN_KEYS}
TELEGRAM = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAHfakefakefakefakefakefakefakefake12",
    "TELEGRAM_CHAT_ID": "42",
}


def test_real_orders_without_telegram_or_a_terminal_are_refused_naming_what_to_set():
    why = channel_refusal(load_settings(LIVE), terminal=False)
    assert why is not None
    assert why.startswith("TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID: required to trade for real")
    assert "kraken:master" in why and "DRY_RUN=true" in why


def test_real_orders_start_with_telegram_or_with_a_terminal():
    assert channel_refusal(load_settings(LIVE | TELEGRAM), terminal=False) is None
    assert channel_refusal(load_settings(LIVE), terminal=True) is None


def test_the_testnet_needs_a_channel_like_live():
    env = {"EXCHANGES": "binance", "DRY_RUN": "false", "BINANCE_SANDBOX": "true"}
    keys = {"BINANCE_MASTER_API_KEY": "k-abcdefgh", "BINANCE_MASTER_API_SECRET": "s-abcdefgh"}
    assert "binance:master" in channel_refusal(load_settings(env | keys), terminal=False)


def test_simulated_orders_need_no_channel():
    assert channel_refusal(load_settings({}), terminal=False) is None  # the offline demo
    dry = LIVE | {"DRY_RUN": "true"}
    assert channel_refusal(load_settings(dry), terminal=False) is None
    no_keys = {"EXCHANGES": "kraken", "DRY_RUN": "false"}  # skipped: nothing would trade
    assert channel_refusal(load_settings(no_keys), terminal=False) is None
