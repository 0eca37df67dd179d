"""Every command through the real Dispatcher and handlers, on paper accounts (no Telegram)."""

from __future__ import annotations

import asyncio
import io
import re

import pytest

from chatbot.console import Console
from handlers.reply import plain
from handlers.table import COMMANDS
from sim.clock import FakeClock
from tests.handlers_support import make_office, office_fixture, pair_fixture  # noqa: F401
from trading.errors import Unrecognized
from trading.events import Emergency
from trading.models import OrderRequest, OrderType, Side
from trading.modes import Mode

# ---- the table ---------------------------------------------------------------------------


def test_every_command_has_a_telegram_valid_name_and_a_help_line():
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    for c in COMMANDS:
        assert re.fullmatch(r"[a-z0-9_]{1,32}", c.name), c.name
        assert 3 <= len(c.help) <= 256, c.name
    assert {c.name for c in COMMANDS if c.confirm} == {"kill", "stop", "abort", "reset"}
    assert set(names) >= {
        "ping", "info", "kill", "stop", "abort", "pause", "unpause", "resume", "ban", "unban",
        "bans", "sync", "buy", "sell", "debug", "ack", "chart", "help",
    }  # fmt: skip


async def test_help_lists_every_command_with_usage(office):
    reply = await office.run("/help")
    for c in COMMANDS:
        assert f"/{c.name}" in reply.text
    assert "/buy [ACCOUNT] SYMBOL [QUOTE_AMOUNT]" in reply.text


# ---- status ------------------------------------------------------------------------------


async def test_ping_reports_mode_and_last_cycle_of_each_account(pair):
    await pair.rigs[0].cycles(1)
    pair.clock.advance(20)
    reply = await pair.run("/ping")
    assert reply.text.startswith("<b>pong</b>")
    assert "paper:main: running, last cycle 80 s ago" in reply.text
    assert "kraken:master: running, last cycle never" in reply.text


async def test_info_shows_positions_with_entry_price_pnl_and_totals(pair):
    await pair.enter(pair.rigs[0], ["BTC/USDT", "ETH/USDT"])
    text = plain((await pair.run("/info")).text)
    position = next(line for line in text.splitlines() if line.startswith("• BTC/USDT"))
    held = pair.rigs[0].trader.book.positions["BTC/USDT"]
    assert f"@ {held.entry_price:,.2f}" in position and "PnL" in position
    assert "paper:main · running" in text and "kraken:master · running" in text
    assert "2 open position(s)" in text and "no open positions" in text
    assert "API: health 100.0%, circuit closed" in text
    assert "Total" in text and "2 positions" in text


async def test_info_for_one_named_account_shows_only_it(pair):
    text = (await pair.run("/info kraken")).text
    assert "kraken:master" in text and "paper:main" not in text and "Total" not in text


@pytest.mark.parametrize(
    "line",
    ["/info nope", "/pause nope", "/unpause nope", "/resume nope", "/sync nope", "/bans nope",
     "/debug nope", "/kill nope", "/stop nope", "/ban nope BTC/USDT", "/sell nope BTC/USDT",
     "/buy nope BTC/USDT 10", "/buy nope BTC/USDT", "/chart nope", "/reset nope"],
)  # fmt: skip
async def test_unknown_account_is_refused_naming_the_known_ones(pair, line):
    reply = await pair.run(line)
    assert not reply.ok and not reply.buttons  # refused before any confirmation
    assert "nope" in reply.text and "paper:main, kraken:master" in reply.text
    assert [t.mode for t in pair.desk.traders] == [Mode.RUNNING, Mode.RUNNING]
    assert pair.rigs[0].created() == 0


async def test_extra_arguments_are_refused_with_the_usage(office):
    reply = await office.run("/pause paper extra")
    assert not reply.ok and "Usage: /pause [ACCOUNT]" in reply.text
    assert office.rig.trader.mode is Mode.RUNNING


async def test_debug_shows_versions_health_notifier_jobs_and_hides_secrets():
    settings = {
        "telegram": {"token": "***", "chat_id": 42},
        "accounts": [{"exchange": "kraken", "api_secret": "leaked-by-a-bug", "missing": []}],
        "notify": {"pushover_token": None, "queue_size": 10},
    }
    o = make_office(FakeClock(), jobs=lambda: [("cycle:paper:main", None)], redacted=settings)
    await o.start()
    o.rig.paper.set_clock_skew(1.5)
    await o.rig.paper.sync_time()
    text = plain((await o.run("/debug")).text)
    await o.close()
    assert "python-telegram-bot 22.8" in text and "ccxt 4.5.90" in text
    assert "paper:main: mode running · clock offset +1500 ms · circuit closed" in text
    assert "health 100.0% · budget 20" in text and "last fault none" in text
    assert "queue 0/10" in text and "dropped 0" in text
    assert "cycle:paper:main: paused" in text
    assert "telegram.chat_id = 42" in text and "telegram.token = ***" in text
    assert "accounts[0].api_secret = ***" in text and "leaked-by-a-bug" not in text
    assert "notify.pushover_token = unset" in text


async def test_debug_names_a_call_answering_unrecognized_errors(office):
    office.rig.paper.inject("fetch_tickers", Unrecognized("an odd answer"), count=1)
    with pytest.raises(Unrecognized):
        await office.rig.connector.tickers()
    text = plain((await office.run("/debug")).text)
    assert "fetch_tickers answering unrecognized errors since" in text


# ---- sync --------------------------------------------------------------------------------


async def test_sync_in_agreement_says_so(pair):
    reply = await pair.run("/sync")
    assert reply.ok and reply.text.count("no differences") == 2


async def test_sync_reports_every_difference(office):
    await office.enter(office.rig, ["BTC/USDT"])
    amount = office.rig.trader.book.positions["BTC/USDT"].amount
    # Someone cancels the bot's stop to sell half the coins by hand, and leaves a foreign
    # order on the exchange.
    await office.rig.sell_outside("BTC/USDT", amount / 2)
    await office.rig.paper.create_order(
        OrderRequest("ETH/USDT", Side.BUY, OrderType.LIMIT, 0.1, "by-hand-2", price=1000.0)
    )
    # A shortfall is acted on only when a second sync shows it too (a fill can land between
    # the reads of one sync): the first /sync says so, the second reduces the position.
    first = plain((await office.run("/sync")).text)
    assert "unresolved BTC/USDT" in first
    reply = await office.run("/sync")
    text = plain(reply.text)
    assert reply.ok and "paper:main: synced · 1 position(s)" in text
    assert "• position_reduced BTC/USDT" in text
    assert "• foreign_orders: 1 open orders not the bot's: ETH/USDT" in text
    assert office.rig.open_orders()  # the foreign order is reported, never touched


# ---- symbols -----------------------------------------------------------------------------


async def test_ban_normalizes_the_symbol_and_bans_lists_it(pair):
    reply = await pair.run("/ban btc")
    assert reply.ok
    assert "paper:main: BTC/USDT banned" in reply.text
    assert "kraken:master: BTC/USDT banned" in reply.text
    listed = plain((await pair.run("/bans paper")).text)
    assert "paper:main: 1 banned symbol(s)" in listed and "• BTC/USDT · banned by command" in listed
    again = await pair.run("/ban paper BTC-USDT")
    assert not again.ok and "BTC/USDT is already banned" in again.text


async def test_unban_allows_the_symbol_again_and_unban_of_unbanned_is_refused(office):
    await office.run("/ban ETH/USDT")
    reply = await office.run("/unban eth/usdt")
    assert reply.ok and "ETH/USDT may be traded again" in reply.text
    assert office.rig.trader.bans() == ()
    refused = await office.run("/unban ETH/USDT")
    assert not refused.ok and "ETH/USDT is not banned" in refused.text


@pytest.mark.parametrize("line", ["/ban NOPE/USDT", "/unban NOPE/USDT", "/sell NOPE", "/buy zzz"])
async def test_unknown_symbol_is_refused_on_every_exchange(office, line):
    reply = await office.run(line)
    assert not reply.ok and "on every configured exchange" in reply.text
    assert office.store.bans("paper:main") == {} and office.rig.created() == 0


@pytest.mark.parametrize("line", ["/ban", "/unban", "/sell", "/buy", "/ban paper"])
async def test_missing_symbol_is_refused_with_the_usage(office, line):
    reply = await office.run(line)
    assert not reply.ok and "Which symbol?" in reply.text and "Usage: /" in reply.text


async def test_symbol_markup_is_escaped_in_the_refusal(office):
    reply = await office.run("/ban <b>x</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in reply.text and "<b>x" not in reply.text


async def test_buy_goes_through_the_risk_gate_with_the_amount_given(office):
    reply = await office.run("/buy SOL/USDT 50")
    text = plain(reply.text)
    assert reply.ok and "paper:main: bought" in text and "SOL/USDT" in text
    cost = float(re.search(r"= ([\d,.]+) USDT", text).group(1).replace(",", ""))
    assert 45 <= cost <= 50.5
    assert "SOL/USDT" in office.rig.trader.book.positions


@pytest.mark.parametrize(
    ("amount", "says"),
    [("abc", "Malformed amount abc"), ("-5", "positive"), ("0", "positive"),
     ("nan", "positive"), ("inf", "positive"), ("1e999", "positive")],
)  # fmt: skip
async def test_bad_amounts_are_refused_and_nothing_is_bought(office, amount, says):
    reply = await office.run(f"/buy SOL/USDT {amount}")
    assert not reply.ok and says in reply.text
    assert office.rig.created() == 0 and not office.rig.trader.book.positions


async def test_buy_refused_by_the_gate_says_why(office):
    await office.run("/pause")
    reply = await office.run("/buy SOL/USDT 50")
    assert not reply.ok and "paper:main: buy SOL/USDT refused" in reply.text
    assert "paused" in reply.text and office.rig.created() == 0


async def test_buy_with_a_misspelt_account_names_the_known_ones(pair):
    reply = await pair.run("/buy krakn SOL/USDT")
    assert not reply.ok and "No account krakn" in reply.text and "kraken:master" in reply.text


async def test_sell_exits_the_bots_position_with_its_pnl(pair):
    await pair.enter(pair.rigs[0], ["BTC/USDT"])
    reply = await pair.run("/sell btc")
    text = plain(reply.text)
    assert reply.ok and "paper:main: sold" in text and "PnL" in text
    assert "kraken:master" not in text  # only the account holding it
    assert pair.rigs[0].held("BTC/USDT") == 0
    refused = await pair.run("/sell BTC/USDT")
    assert not refused.ok and "no position in BTC/USDT opened by the bot" in refused.text


# ---- alerts and chart --------------------------------------------------------------------


async def test_ack_stops_the_repeats_and_names_what_is_still_open(office):
    nothing = await office.run("/ack")
    assert nothing.ok and "Nothing to acknowledge" in nothing.text
    office.notifier.notify(
        Emergency(account="paper:main", at=office.clock.time(), key="fatal:x", message="boom")
    )
    reply = await office.run("/ack")
    assert "Acknowledged 1 emergency" in reply.text and "fatal:x" in reply.text
    assert all(a.acked for a in office.notifier.stats().active_emergencies)
    refused = await office.run("/ack everything")
    assert not refused.ok


async def test_chart_without_equity_points_says_so_in_text(office):
    reply = await office.run("/chart")
    assert reply.photo is None and "No equity recorded for paper:main" in reply.text


async def test_chart_is_a_png_with_first_last_min_max_and_change(office):
    for i, equity in enumerate([1000.0, 1010.0, 990.0, 1030.0]):
        office.store.add_equity("paper:main", office.clock.time() - 3600 + i * 600, equity, 0.1)
    reply = await office.run("/chart 24h")
    assert reply.photo is not None and reply.photo.startswith(b"\x89PNG")
    text = plain(reply.text)
    assert "1,000.00 → 1,030.00 USDT" in text and "change +30.00 (+3.00 %)" in text
    assert "min 990.00" in text and "max 1,030.00" in text and "4 points" in text


async def test_chart_period_and_accounts(pair):
    now = pair.clock.time()
    for label in ("paper:main", "kraken:master"):
        pair.store.add_equity(label, now - 7200, 1000.0, 0)
        pair.store.add_equity(label, now - 60, 1100.0, 0)
    both = await pair.run("/chart")
    assert both.photo and "percent change" in both.text and "kraken:master orange" in both.text
    recent = await pair.run("/chart kraken 1h")
    assert recent.photo is None and "Only one equity point" in recent.text
    bad = await pair.run("/chart 3x")
    assert not bad.ok and "neither an account nor a period" in bad.text


async def test_commands_with_no_account_configured_say_so():
    o = make_office(FakeClock(), accounts=())
    for line in ("/info", "/pause", "/ban BTC", "/kill now", "/chart"):
        reply = await o.run(line)
        assert not reply.ok and "No account is configured" in reply.text, line
    assert "no accounts are trading" in (await o.run("/ping")).text
    await o.close()


async def test_every_command_and_its_result_is_audited(office):
    await office.run("/pause")
    await office.run("/ban NOPE/USDT")
    await office.run("/kill")
    log = office.store.audit_log()
    assert [e.command for e in log] == ["ban", "pause"]  # asking is not acting
    assert "Unknown symbol NOPE/USDT" in log[0].result and "<" not in log[0].result


async def test_the_console_offers_the_same_table_with_typed_confirmations(office):
    office.store.add_equity("paper:main", office.clock.time() - 600, 10_000.0, 0.0)
    office.store.add_equity("paper:main", office.clock.time(), 10_010.0, 0.0)
    await office.enter(office.rig, ["BTC/USDT"])
    out = io.StringIO()
    lines = "/info\n/bans\n/pause\n/chart\n/kill\nyes\n/info\n"
    await asyncio.wait_for(Console(office.dispatcher, inp=io.StringIO(lines), out=out).run(), 10)
    text = out.getvalue()
    assert "paper:main · running" in text and "paper:main: no banned symbols" in text
    assert "paused (was running)" in text and "[picture:" in text
    assert "(type yes to confirm, no to cancel)" in text and "killed and flat" in text
    assert "<b>" not in text and "paper:main · killed" in text
