"""/trades, /profit, /daily, /weekly, /monthly, /performance and /balance: what the bot made.

The figures come from trading/reports.py (the store's trades and equity, each trader's info());
this module only parses arguments and formats. Every money figure goes through `cash`, every
percentage through `percent`, so they read the same in each command. Nothing here waits on an
exchange or a trader's lock.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from handlers.context import Context
from handlers.format import BadInput, cash, command, num, percent, pick, span, utc
from handlers.reply import Reply, esc
from trading import reports
from trading.ledger import Holding, Holdings, PeriodResult, Profit, Unit, trade_return

TRADES_DEFAULT, TRADES_MOST = 10, 50
PROFIT_DAYS_MOST = 3650
# (default, most) periods per command: a reply of the most still fits a few messages.
PERIODS = {Unit.DAY: (7, 90), Unit.WEEK: (8, 52), Unit.MONTH: (6, 36)}
TITLES = {Unit.DAY: "Daily", Unit.WEEK: "Weekly", Unit.MONTH: "Monthly"}
NOUNS = {Unit.DAY: "days", Unit.WEEK: "weeks", Unit.MONTH: "months"}
_WHOLE = re.compile(r"\d+")


def _count(
    ctx: Context, args: list[str], *, usage: str, noun: str, most: int
) -> tuple[list, int | None]:
    """The traders a command is about and its number argument (None when left out): a whole
    number from 1 to `most`, or BadInput saying which of the two was wrong."""
    traders, rest = pick(ctx, args, max_rest=1, usage=usage)
    if not rest:
        return traders, None
    text = rest[0].strip()
    if not _WHOLE.fullmatch(text):
        if len(rest) == len(args) and not _numeric(text):  # no account named: a typo of one?
            raise BadInput(
                f"{esc(text)} is neither an account nor a number of {noun}. "
                f"Known accounts: {esc(', '.join(ctx.desk.labels))}. Usage: {esc(usage)}"
            )
        raise BadInput(
            f"The number of {noun} must be a whole number from 1 to {most}, not {esc(text)}. "
            f"Usage: {esc(usage)}"
        )
    value = int(text)
    if not 1 <= value <= most:
        raise BadInput(f"The number of {noun} must be from 1 to {most}, not {value}.")
    return traders, value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scope(traders: list, ctx: Context) -> str:
    if len(traders) == len(ctx.desk.traders) and len(traders) > 1:
        return "all accounts"
    return ", ".join(t.label for t in traders)


# ---- /trades ---------------------------------------------------------------------------------


@command
async def trades(ctx: Context, args: list[str]) -> Reply:
    """The last N closed trades, newest first."""
    usage = "/trades [ACCOUNT] [N]"
    traders, count = _count(ctx, args, usage=usage, noun="trades", most=TRADES_MOST)
    closed = reports.latest_trades(ctx.desk, traders, count or TRADES_DEFAULT)
    if not closed:
        return Reply(text=f"No closed trades yet on {esc(_scope(traders, ctx))}.")
    several = len(traders) > 1
    lines = [f"<b>Last {len(closed)} closed trade(s)</b> · {esc(_scope(traders, ctx))}"]
    for t in closed:
        quote = t.symbol.split("/", 1)[-1]
        where = f" · {esc(t.account)}" if several else ""
        lines.append(
            f"• <b>{esc(t.symbol)}</b> {cash(t.pnl, quote, sign=True)} "
            f"({percent(trade_return(t), sign=True)}) · {esc(t.reason)}{where}"
        )
        lines.append(
            f"  {num(t.amount)} @ {num(t.entry_price)} → {num(t.exit_price)} · fees "
            f"{cash(t.fees, quote)} · held {span(t.closed_at - t.opened_at)} · "
            f"closed {utc(t.closed_at)}"
        )
    return Reply(text="\n".join(lines))


# ---- /profit ---------------------------------------------------------------------------------


@command
async def profit(ctx: Context, args: list[str]) -> Reply:
    """Realized and open profit, fees, win rate, best and worst trade, profit factor and the
    deepest drawdown, over the last DAYS days (default: ever)."""
    usage = "/profit [ACCOUNT] [DAYS]"
    traders, days = _count(ctx, args, usage=usage, noun="days", most=PROFIT_DAYS_MOST)
    since = None if days is None else ctx.clock.time() - days * 86400.0
    report = reports.profit(ctx.desk, traders, since)
    window = "all time" if days is None else f"the last {days} day(s)"
    blocks = [f"💰 <b>Profit</b> · {window}"]
    blocks.extend("\n".join(_profit_block(p)) for p in report.accounts)
    blocks.extend("\n".join(_profit_block(p)) for p in report.totals)
    return Reply(text="\n\n".join(blocks))


def _profit_block(p: Profit) -> list[str]:
    q, s = p.quote, p.trades
    title = "Total" if p.account == "total" else esc(p.account)
    lines = [
        f"<b>{title}</b> ({esc(q)})",
        f"realized {cash(s.realized, q, sign=True)} over {s.count} closed trade(s), "
        f"after {cash(s.fees, q)} fees",
        f"open {cash(p.unrealized, q, sign=True)} on {p.open_positions} position(s)",
        f"total {cash(p.pnl, q, sign=True)}",
    ]
    if s.count:
        lines.append(
            f"won {s.wins}, lost {s.losses} · win rate {percent(s.win_rate or 0.0)} · "
            f"profit factor {_factor(s.profit_factor)}"
        )
        lines.append(f"best {_trade_line(s.best, q)} · worst {_trade_line(s.worst, q)}")
    if p.drawdown is None:
        lines.append("max drawdown: no equity recorded")
    else:
        d = p.drawdown
        lines.append(f"max drawdown {cash(d.amount, q)} ({percent(d.fraction)})")
    return lines


def _factor(value: float | None) -> str:
    if value is None:
        return "-"
    return "∞" if value == float("inf") else f"{value:.2f}"


def _trade_line(trade, quote: str) -> str:
    return (
        f"{esc(trade.symbol)} {cash(trade.pnl, quote, sign=True)} "
        f"({percent(trade_return(trade), sign=True)})"
    )


# ---- /daily /weekly /monthly -----------------------------------------------------------------


@command
async def daily(ctx: Context, args: list[str]) -> Reply:
    """Profit and trades of each of the last N days (UTC), the empty ones too."""
    return _periods(ctx, args, Unit.DAY)


@command
async def weekly(ctx: Context, args: list[str]) -> Reply:
    """Profit and trades of each of the last N ISO weeks (from Monday, UTC)."""
    return _periods(ctx, args, Unit.WEEK)


@command
async def monthly(ctx: Context, args: list[str]) -> Reply:
    """Profit and trades of each of the last N calendar months (UTC)."""
    return _periods(ctx, args, Unit.MONTH)


def _periods(ctx: Context, args: list[str], unit: Unit) -> Reply:
    default, most = PERIODS[unit]
    usage = f"/{TITLES[unit].lower()} [ACCOUNT] [N]"
    traders, count = _count(ctx, args, usage=usage, noun=NOUNS[unit], most=most)
    lines = [f"📅 <b>{TITLES[unit]} profit</b> (UTC) · {esc(_scope(traders, ctx))}"]
    for quote, rows in reports.periods(ctx.desk, traders, unit, count or default):
        lines.extend(_period_line(r, unit, quote) for r in rows)
        pnl = math.fsum(r.pnl for r in rows)
        closed = sum(r.trades for r in rows)
        lines.append(f"<b>in all</b> {cash(pnl, quote, sign=True)} · {closed} trade(s)")
    return Reply(text="\n".join(lines))


def _period_line(r: PeriodResult, unit: Unit, quote: str) -> str:
    start = datetime.fromtimestamp(r.start, UTC)
    if unit is Unit.DAY:
        label = start.strftime("%Y-%m-%d %a")
    elif unit is Unit.WEEK:
        year, week, _ = start.isocalendar()
        label = f"{year}-W{week:02d} from {start:%m-%d}"
    else:
        label = start.strftime("%Y-%m")
    if not r.trades:
        return f"{label}: {cash(0.0, quote)} · no trades"
    return (
        f"{label}: {cash(r.pnl, quote, sign=True)} · {r.trades} trade(s), {r.wins} won · "
        f"fees {cash(r.fees, quote)}"
    )


# ---- /performance ----------------------------------------------------------------------------


@command
async def performance(ctx: Context, args: list[str]) -> Reply:
    """Profit per symbol over every closed trade, the best first."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/performance [ACCOUNT]")
    rows = reports.performance(ctx.desk, traders)
    if not rows:
        return Reply(text=f"No closed trades yet on {esc(_scope(traders, ctx))}.")
    lines = [f"🏆 <b>Performance</b> per symbol · {esc(_scope(traders, ctx))}"]
    for i, r in enumerate(rows, 1):
        quote = r.symbol.split("/", 1)[-1]
        lines.append(
            f"{i}. <b>{esc(r.symbol)}</b> {cash(r.pnl, quote, sign=True)} "
            f"({percent(r.ret, sign=True)}) · {r.trades} trade(s), {r.wins} won"
        )
    return Reply(text="\n".join(lines))


# ---- /balance --------------------------------------------------------------------------------


@command
async def balance(ctx: Context, args: list[str]) -> Reply:
    """Every currency held, valued in the quote, the bot's positions apart from your coins."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/balance [ACCOUNT]")
    report = reports.balances(traders)
    blocks = ["\n".join(_holdings_block(h)) for h in (*report.accounts, *report.totals)]
    blocks.extend(
        f"<b>{esc(label)}</b>: balance not read from the exchange yet"
        for label in report.unsynced
    )
    return Reply(text="\n\n".join(blocks))


def _holdings_block(h: Holdings) -> list[str]:
    q = h.quote
    title = "Total" if h.account == "total" else esc(h.account)
    lines = [
        f"<b>{title}</b> · worth {cash(h.value, q)}",
        f"cash {cash(h.cash, q)} · bot's positions {cash(h.bot_value, q)} · "
        f"your own coins {cash(h.own_value, q)}",
    ]
    if h.unpriced:
        lines.append(f"not counted (no price in {esc(q)}): {esc(', '.join(h.unpriced))}")
    lines.extend(_coin_line(c, q) for c in h.coins)
    if not h.coins:
        lines.append("nothing held")
    return lines


def _coin_line(c: Holding, quote: str) -> str:
    if c.currency == quote:
        return f"• {esc(c.currency)} {cash(c.amount)}"
    worth = "no price" if c.value is None else f"≈ {cash(c.value, quote)}"
    if c.bot and c.own:
        whose = f"bot {num(c.bot)}, yours {num(c.own)}"
    else:
        whose = "bot's position" if c.bot else "yours"
    return f"• {esc(c.currency)} {num(c.amount)} {worth} · {whose}"
