"""/trades /profit /daily /weekly /monthly /performance /balance: the real traders trade a
scripted sequence on paper exchanges, the real dispatcher answers, and every figure is checked
against the store's trades table, to the cent."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from handlers.format import cash, percent
from handlers.reply import plain
from sim.clock import FakeClock
from tests.handlers_support import Office, make_office
from trading.models import OrderRequest, OrderType, Side
from trading.modes import Mode

FIGURE = r"([+-]?[\d,]+\.\d+) USDT"


def figure(pattern: str, text: str) -> float:
    """The money figure the pattern's one group matched ("+1,234.56" -> 1234.56)."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return float(match.group(1).replace(",", ""))


def block(text: str, title: str) -> str:
    """The paragraph of a reply that starts with `title`."""
    return next(b for b in text.split("\n\n") if b.startswith(title))


def day_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


async def trade_history() -> Office:
    """Two accounts with a day of history each. paper:main: BTC out at its target, ETH out on
    the strategy's signal, then ADA still open; kraken:master, the next day: SOL out at its
    resting stop. The owner holds DOGE of their own on paper:main."""
    o = make_office(FakeClock(), ("MAIN", "MASTER"), names=("paper", "kraken"))
    await o.start()
    main, master = o.rigs
    await o.enter(main, ["BTC/USDT", "ETH/USDT"])
    main.paper.shock("BTC/USDT", 8)
    await main.cycles(2)
    main.strategy.exits["ETH/USDT"] = "trend turned"
    await main.cycles(2)
    o.clock.advance(86_400)
    await o.enter(master, ["SOL/USDT"])
    master.paper.shock("SOL/USDT", -9)
    await master.cycles(3)
    await main.paper.create_order(
        OrderRequest("DOGE/USDT", Side.BUY, OrderType.MARKET, 1000.0, "user-doge")
    )
    await o.enter(main, ["ADA/USDT"])
    main.paper.shock("ADA/USDT", 2)
    await main.cycles(1)
    await master.cycles(1)
    assert {t.symbol for t in o.store.trades()} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert set(main.trader.book.positions) == {"ADA/USDT"}
    return o


@pytest.fixture
async def traded():
    o = await trade_history()
    yield o
    await o.close()


# ---- the figures add up to the store -----------------------------------------------------


async def test_profit_adds_up_to_the_trades_table_per_account_and_in_total(traded):
    text = plain((await traded.run("/profit")).text)
    assert text.startswith("💰 Profit · all time")
    everything = traded.store.trades()
    for label in ("paper:main", "kraken:master", "Total"):
        mine = [t for t in everything if label == "Total" or t.account == label]
        part = block(text, label)
        assert figure(r"realized " + FIGURE, part) == pytest.approx(
            sum(t.pnl for t in mine), abs=0.005
        )
        assert f"over {len(mine)} closed trade(s)" in part
        assert figure(r"after " + FIGURE + " fees", part) == pytest.approx(
            sum(t.fees for t in mine), abs=0.00005
        )
        assert "max drawdown" in part
    main = traded.rig.trader.info()
    (ada,) = main.positions
    assert ada.pnl > 0
    assert figure(r"open " + FIGURE, block(text, "paper:main")) == pytest.approx(ada.pnl, abs=0.005)
    assert "on 1 position(s)" in block(text, "Total")
    assert "won 2, lost 1 · win rate 66.7%" in block(text, "Total")
    best = max(everything, key=lambda t: t.pnl)
    worst = min(everything, key=lambda t: t.pnl)
    assert f"best {best.symbol} {cash(best.pnl, 'USDT', sign=True)}" in text
    assert f"worst {worst.symbol} {cash(worst.pnl, 'USDT', sign=True)}" in text


async def test_profit_over_days_counts_only_the_trades_closed_in_them(traded):
    text = plain((await traded.run("/profit 1")).text)
    assert text.startswith("💰 Profit · the last 1 day(s)")
    recent = [t for t in traded.store.trades() if t.closed_at >= traded.clock.time() - 86_400]
    assert [t.symbol for t in recent] == ["SOL/USDT"]
    total = block(text, "Total")
    assert figure(r"realized " + FIGURE, total) == pytest.approx(recent[0].pnl, abs=0.005)
    assert "over 1 closed trade(s)" in total


async def test_daily_rows_add_up_to_the_trades_of_each_utc_day(traded):
    text = plain((await traded.run("/daily 3")).text)
    per_day: dict[str, list[float]] = defaultdict(list)
    for t in traded.store.trades():
        per_day[day_of(t.closed_at)].append(t.pnl)
    rows = [line for line in text.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(rows) == 3
    today = day_of(traded.clock.time())
    assert rows[0].startswith(today)
    for row in rows:
        pnl = math.fsum(per_day.get(row[:10], []))
        assert figure(r": " + FIGURE, row) == pytest.approx(pnl, abs=0.005), row
        if row[:10] not in per_day:
            assert "no trades" in row
    assert len(per_day) == 2  # both trading days are in the three shown
    everything = traded.store.trades()
    assert figure(r"in all " + FIGURE, text) == pytest.approx(
        sum(t.pnl for t in everything), abs=0.005
    )
    assert f"· {len(everything)} trade(s)" in text.splitlines()[-1]


async def test_weekly_and_monthly_hold_every_trade_of_the_week_and_month(traded):
    total = sum(t.pnl for t in traded.store.trades())
    weekly = plain((await traded.run("/weekly 2")).text)
    assert re.search(r"^2023-W46 from 11-13: ", weekly, re.M)
    assert figure(r"2023-W46 from 11-13: " + FIGURE, weekly) == pytest.approx(total, abs=0.005)
    assert "2023-W45 from 11-06: 0.00 USDT · no trades" in weekly
    monthly = plain((await traded.run("/monthly")).text)
    assert figure(r"2023-11: " + FIGURE, monthly) == pytest.approx(total, abs=0.005)
    assert len(re.findall(r"^\d{4}-\d\d: ", monthly, re.M)) == 6


async def test_performance_per_symbol_adds_up_to_the_trades_of_each_symbol(traded):
    text = plain((await traded.run("/performance")).text)
    rows = [line for line in text.splitlines() if re.match(r"\d+\. ", line)]
    by_symbol = defaultdict(list)
    for t in traded.store.trades():
        by_symbol[t.symbol].append(t)
    assert len(rows) == len(by_symbol) == 3
    figures = []
    for row in rows:
        symbol = row.split()[1]
        trades = by_symbol[symbol]
        pnl = sum(t.pnl for t in trades)
        cost = sum(t.amount * t.entry_price for t in trades)
        assert figure(symbol + " " + FIGURE, row) == pytest.approx(pnl, abs=0.005)
        assert f"({percent(pnl / cost, sign=True)})" in row
        figures.append(pnl)
    assert figures == sorted(figures, reverse=True)


async def test_trades_lists_the_last_closed_newest_first_with_their_accounts(traded):
    text = plain((await traded.run("/trades 2")).text)
    newest = sorted(traded.store.trades(), key=lambda t: t.closed_at, reverse=True)[:2]
    shown = re.findall(r"^• (\S+) ([+-][\d,.]+) USDT .* · (\S+)$", text, re.M)
    assert [(s, a) for s, _, a in shown] == [(t.symbol, t.account) for t in newest]
    for (_, pnl, _), t in zip(shown, newest, strict=True):
        assert float(pnl.replace(",", "")) == pytest.approx(t.pnl, abs=0.005)
    one = plain((await traded.run("/trades kraken")).text)
    assert "SOL/USDT" in one and "BTC/USDT" not in one and "kraken:master" in one


async def test_balance_values_every_coin_and_marks_the_bots_position_apart(traded):
    text = plain((await traded.run("/balance")).text)
    main = block(text, "paper:main")
    assert re.search(r"^• ADA [\d.]+ ≈ [\d,.]+ USDT · bot's position$", main, re.M), main
    assert re.search(r"^• DOGE 1,000.00 ≈ [\d,.]+ USDT · yours$", main, re.M), main
    info = traded.rig.trader.info()
    (ada,) = info.positions
    assert figure(r"bot's positions " + FIGURE, main) == pytest.approx(ada.value, abs=0.005)
    cash_line = figure(r"cash " + FIGURE, main)
    assert cash_line == pytest.approx(info.balances["USDT"], abs=0.005)
    worth = figure(r"worth " + FIGURE, main)
    own = figure(r"your own coins " + FIGURE, main)
    assert worth == pytest.approx(cash_line + ada.value + own, abs=0.01)
    other = figure(r"worth " + FIGURE, block(text, "kraken:master"))
    assert figure(r"worth " + FIGURE, block(text, "Total")) == pytest.approx(
        worth + other, abs=0.01
    )


async def test_a_restored_account_not_yet_synced_says_so_in_balance():
    o = make_office(FakeClock())
    o.rig.trader.restore()
    text = plain((await o.run("/balance")).text)
    await o.close()
    assert text == "paper:main: balance not read from the exchange yet"


async def test_an_account_without_history_answers_plainly():
    o = make_office(FakeClock())
    await o.start()
    replies = {line: plain((await o.run(line)).text) for line in ("/trades", "/performance")}
    profit = plain((await o.run("/profit")).text)
    daily = plain((await o.run("/daily 2")).text)
    await o.close()
    assert replies["/trades"] == "No closed trades yet on paper:main."
    assert replies["/performance"] == "No closed trades yet on paper:main."
    assert "realized +0.00 USDT over 0 closed trade(s)" in profit and "win rate" not in profit
    assert daily.count("0.00 USDT · no trades") == 2


# ---- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "answer"),
    [("/trades 0", "must be from 1 to 50, not 0"),
     ("/trades 51", "must be from 1 to 50, not 51"),
     ("/trades -3", "must be a whole number from 1 to 50, not -3"),
     ("/trades 2.5", "must be a whole number from 1 to 50, not 2.5"),
     ("/profit 0", "number of days must be from 1 to 3650"),
     ("/profit 99999", "number of days must be from 1 to 3650, not 99999"),
     ("/profit week", "week is neither an account nor a number of days"),
     ("/daily nope", "nope is neither an account nor a number of days. Known accounts: "
                     "paper:main, kraken:master"),
     ("/daily 91", "must be from 1 to 90"),
     ("/weekly kraken x", "number of weeks must be a whole number from 1 to 52, not x"),
     ("/monthly 37", "number of months must be from 1 to 36"),
     ("/daily nope 3", "No account nope. Known accounts: paper:main, kraken:master."),
     ("/trades kraken 3 4", "Too many arguments. Usage: /trades [ACCOUNT] [N]"),
     ("/performance nope", "No account nope"),
     ("/performance kraken 3", "Usage: /performance [ACCOUNT]"),
     ("/balance nope", "No account nope"),
     ("/balance kraken x", "Usage: /balance [ACCOUNT]")],
)  # fmt: skip
async def test_bad_arguments_are_refused_clearly_and_change_nothing(traded, line, answer):
    before = (len(traded.store.trades()), [r.created() for r in traded.rigs])
    reply = await traded.run(line)
    assert not reply.ok and answer in plain(reply.text), reply.text
    assert (len(traded.store.trades()), [r.created() for r in traded.rigs]) == before
    assert [t.mode for t in traded.desk.traders] == [Mode.RUNNING, Mode.RUNNING]


# ---- one way to show money ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sign", "shown"),
    [(1234567.891, False, "1,234,567.89 USDT"), (-12.0, True, "-12.00 USDT"),
     (12.345, True, "+12.35 USDT"), (0.0042, True, "+0.0042 USDT"), (0.5, False, "0.50 USDT"),
     (0.99999, False, "1.00 USDT"), (-0.0, True, "+0.00 USDT"), (-1e-12, False, "0.00 USDT")],
)  # fmt: skip
def test_cash_separates_thousands_and_keeps_the_digits_a_small_figure_needs(value, sign, shown):
    assert cash(value, "USDT", sign=sign) == shown


def test_percent_has_no_space_and_a_sign_when_asked():
    assert percent(0.0345) == "3.45%"
    assert percent(-0.0345, sign=True) == "-3.45%"
    assert percent(0.667) == "66.7%"
    assert percent(0.0, sign=True) == "+0.00%"
