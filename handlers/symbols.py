"""/ban /unban /bans /buy /sell: what the bot may trade, and manual orders through the risk gate.

A symbol is resolved once for the whole desk ("btc", "BTC-USDT" -> "BTC/USDT"); a symbol no
configured exchange lists is refused before anything happens, and an account that does not list
it is named and skipped.
"""

from __future__ import annotations

from handlers.context import Context
from handlers.format import (
    BadInput,
    ago,
    amount,
    cash,
    command,
    each,
    failed,
    knowing,
    num,
    outcome,
    percent,
    pick,
    span,
    symbol,
    unknown_account,
)
from handlers.reply import Reply, esc
from trading.events import SymbolBanned, TradeClosed, TradeOpened, replying
from trading.risk import Level

MANUAL_BUYS = ("manual buy", "manual limit buy")  # what trading/manual.py records them as


def _need_symbol(rest: list[str], usage: str) -> str:
    if not rest:
        raise BadInput(f"Which symbol? Usage: {esc(usage)}")
    return rest[0]


def _refused(r, what: str) -> str:
    return f"✋ {esc(r.account)}: {what} refused: {esc(r.reason)}"


def _lines(results, ok_line, what: str) -> list[str]:
    lines = []
    for trader, r in results:
        if isinstance(r, Exception):
            lines.append(failed(trader.label, r))
        elif r.ok:
            lines.append(ok_line(trader, r))
        else:
            lines.append(_refused(r, what))
    return lines


# ---- bans -------------------------------------------------------------------------------


@command
async def ban(ctx: Context, args: list[str]) -> Reply:
    """Never enter SYMBOL again (an open position in it is left alone)."""
    usage = "/ban [ACCOUNT] SYMBOL"
    traders, rest = pick(ctx, args, max_rest=1, usage=usage)
    sym = symbol(ctx, _need_symbol(rest, usage))
    listed, notes = knowing(traders, sym)
    with replying(SymbolBanned, symbol=sym, reasons=("by command",)):
        results = await each(listed, lambda t: t.ban(sym))

    def done(trader, r) -> str:
        held = " (the open position stays; /sell exits it)" if sym in trader.book.positions else ""
        return f"🚫 {esc(r.account)}: {esc(sym)} banned, {len(r.bans)} ban(s) in all{held}"

    return outcome(_lines(results, done, f"ban {esc(sym)}") + notes, results)


@command
async def unban(ctx: Context, args: list[str]) -> Reply:
    usage = "/unban [ACCOUNT] SYMBOL"
    traders, rest = pick(ctx, args, max_rest=1, usage=usage)
    text = _need_symbol(rest, usage)
    sym = ctx.desk.normalize_symbol(text)
    if sym is None:
        # A delisted market can still be on the ban list: match it as typed.
        typed = text.strip().upper()
        if not any(typed in t.store.bans(t.label) for t in traders):
            symbol(ctx, text)  # raises: unknown everywhere
        sym = typed
    results = await each(traders, lambda t: t.unban(sym))

    def done(trader, r) -> str:
        return f"✅ {esc(r.account)}: {esc(sym)} may be traded again, {len(r.bans)} ban(s) left"

    return outcome(_lines(results, done, f"unban {esc(sym)}"), results)


@command
async def bans(ctx: Context, args: list[str]) -> Reply:
    """The ban list of every selected account."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/bans [ACCOUNT]")
    now = ctx.clock.time()
    blocks = []
    for trader in traders:
        listed = sorted(trader.bans(), key=lambda b: b.symbol)
        if not listed:
            blocks.append(f"<b>{esc(trader.label)}</b>: no banned symbols")
            continue
        lines = [f"<b>{esc(trader.label)}</b>: {len(listed)} banned symbol(s)"]
        for b in listed:
            by = "loop guard" if b.auto else "command"
            lines.append(f"• {esc(b.symbol)} · {esc(b.reason)} ({by}, {ago(now - b.at)})")
        blocks.append("\n".join(lines))
    return Reply(text="\n".join(blocks))


# ---- manual orders ----------------------------------------------------------------------


def _levels(args: list[str]) -> tuple[list[str], dict[str, Level]]:
    """`sl=`/`tp=` options out of the arguments: a price (61200) or a percent (5%); and
    `limit=` (a price)."""
    rest, levels = [], {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq:
            rest.append(arg)
            continue
        if key.lower() == "limit":
            levels["limit"] = Level(amount(value))
            continue
        if key.lower() not in ("sl", "tp"):
            raise BadInput(
                f"Unknown option {esc(key)}=: only sl= and tp= (a price or a %) and limit=."
            )
        percent = value.endswith("%")
        number = amount(value.rstrip("%"))
        if percent and key.lower() == "sl" and number >= 100:
            raise BadInput(f"A stop-loss of {esc(value)} below the price is not a price.")
        levels[key.lower()] = Level(number, percent=percent)
    return rest, levels


def _order_args(ctx: Context, rest: list[str], usage: str) -> tuple[str, str | None]:
    text = _need_symbol(rest, usage)
    # "/buy krakn BTC/USDT": the symbol came second, so the first word was an account.
    second_is_symbol = len(rest) == 2 and ctx.desk.normalize_symbol(rest[1]) is not None
    if second_is_symbol and ctx.desk.normalize_symbol(text) is None:
        raise BadInput(unknown_account(text, ctx.desk.labels))
    sym = symbol(ctx, text)
    return sym, rest[1] if len(rest) == 2 else None


@command
async def buy(ctx: Context, args: list[str]) -> Reply:
    """A buy of QUOTE_AMOUNT (default STAKE_AMOUNT) through the risk gate: at market, or
    resting at limit= below the ask until it fills or expires."""
    usage = "/buy [ACCOUNT] SYMBOL [QUOTE_AMOUNT] [limit=PRICE] [sl=PRICE|PCT%] [tp=PRICE|PCT%]"
    args, levels = _levels(args)
    traders, rest = pick(ctx, args, max_rest=2, usage=usage)
    sym, quote = _order_args(ctx, rest, usage)
    quote = amount(quote) if quote is not None else None
    listed, notes = knowing(traders, sym)
    stop, target, limit = levels.get("sl"), levels.get("tp"), levels.get("limit")
    price = limit.value if limit is not None else None
    with replying(TradeOpened, symbol=sym, reasons=MANUAL_BUYS):
        results = await each(
            listed, lambda t: t.buy(sym, quote, stop=stop, target=target, limit=price)
        )

    def done(trader, r) -> str:
        q = trader.settings.quote
        if r.resting and not r.amount:
            timeout = span(trader.settings.entry_order_timeout_seconds)
            text = (
                f"🕒 {esc(r.account)}: limit buy of {num(r.resting)} {esc(r.symbol)} resting at "
                f"{num(r.limit_price)} = {cash(r.resting * r.limit_price, q)}; "
                f"cancelled if not filled within {timeout}"
            )
        else:
            text = (
                f"🟢 {esc(r.account)}: bought {num(r.amount)} {esc(r.symbol)} @ {num(r.price)}"
                f" = {cash(r.cost, q)}"
            )
        if r.stop_loss is not None:
            where = {"exchange": " on exchange", "bot": " in bot"}.get(r.guard, " once filled")
            text += f" · stop {num(r.stop_loss)}{where}"
        if r.take_profit is not None:
            text += f" · target {num(r.take_profit)}"
        return text + (f" · {esc(r.reason)}" if r.reason else "")

    return outcome(_lines(results, done, f"buy {esc(sym)}") + notes, results)


def _part(text: str | None) -> tuple[float | None, float | None]:
    """(amount, fraction) of a position to sell: "0.5" or "25%"; neither: all of it."""
    if text is None:
        return None, None
    if not text.endswith("%"):
        return amount(text), None
    try:
        share = float(text[:-1].replace("_", ""))
    except ValueError:
        raise BadInput(f"Malformed percentage {esc(text)}: expected e.g. 25%.") from None
    if not 0 < share <= 100:
        raise BadInput(f"A percentage of the position is above 0 and at most 100, not {esc(text)}.")
    return None, share / 100


@command
async def sell(ctx: Context, args: list[str]) -> Reply:
    """A market sell of the bot's own position in SYMBOL (never other holdings): all of it,
    an AMOUNT of base, or a PCT% of it; the rest keeps its stop, resized."""
    usage = "/sell [ACCOUNT] SYMBOL [AMOUNT|PCT%]"
    traders, rest = pick(ctx, args, max_rest=2, usage=usage)
    sym, part = _order_args(ctx, rest, usage)
    size, fraction = _part(part)
    listed, notes = knowing(traders, sym)
    holders = [t for t in listed if sym in t.book.positions]
    with replying(TradeClosed, symbol=sym, reasons=("manual sell",)):
        results = await each(holders or listed, lambda t: t.sell(sym, size, fraction=fraction))

    def done(trader, r) -> str:
        text = (
            f"🔴 {esc(r.account)}: sold {num(r.amount)} {esc(r.symbol)} @ {num(r.price)}"
            f" = {cash(r.cost, trader.settings.quote)}"
        )
        if r.closed is not None:
            cost = r.closed.amount * r.closed.entry_price
            share = r.closed.pnl / cost if cost > 0 else 0.0
            pnl = cash(r.closed.pnl, trader.settings.quote, sign=True)
            text += f" · PnL {pnl} ({percent(share, sign=True)})"
        elif r.left:
            text += f" · {num(r.left)} left, its stop resized"
        return text + (f" · {esc(r.reason)}" if r.reason else "")

    return outcome(_lines(results, done, f"sell {esc(sym)}") + notes, results)


# ---- locks ------------------------------------------------------------------------------


@command
async def locks(ctx: Context, args: list[str]) -> Reply:
    """Every re-entry cooldown and loop-guard ban, with the time left."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/locks [ACCOUNT]")
    blocks = []
    for trader in traders:
        found = trader.locks()
        if not found:
            blocks.append(f"<b>{esc(trader.label)}</b>: nothing locked")
            continue
        lines = [f"<b>{esc(trader.label)}</b>: {len(found)} lock(s)"]
        lines.extend(_lock_line(lock) for lock in found)
        blocks.append("\n".join(lines))
    return Reply(text="\n".join(blocks))


def _lock_line(lock) -> str:
    if lock.seconds_left is None:
        left = "until /unlock"
    else:
        left = f"{span(lock.seconds_left)} left on the market's clock"
    return f"• {esc(lock.symbol)} · {esc(lock.kind)}: {esc(lock.reason)} ({left})"


@command
async def unlock(ctx: Context, args: list[str]) -> Reply:
    """Clear a symbol's re-entry cooldown and its loop-guard ban."""
    usage = "/unlock [ACCOUNT] SYMBOL"
    traders, rest = pick(ctx, args, max_rest=1, usage=usage)
    sym = symbol(ctx, _need_symbol(rest, usage))
    results = await each(traders, lambda t: t.unlock(sym))

    def done(trader, r) -> str:
        cleared = esc(" and ".join(r.cleared))
        left = len(r.locks)
        return f"🔓 {esc(r.account)}: {esc(sym)} {cleared} cleared, {left} lock(s) left"

    return outcome(_lines(results, done, f"unlock {esc(sym)}"), results)
