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
    command,
    each,
    failed,
    knowing,
    money,
    num,
    outcome,
    pick,
    signed,
    span,
    symbol,
    unknown_account,
)
from handlers.reply import Reply, esc
from trading.risk import Level


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
    """`sl=`/`tp=` options out of the arguments: a price (61200) or a percent (5%)."""
    rest, levels = [], {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq:
            rest.append(arg)
            continue
        if key.lower() not in ("sl", "tp"):
            raise BadInput(f"Unknown option {esc(key)}=: only sl= and tp= (a price or a %).")
        percent = value.endswith("%")
        number = amount(value.rstrip("%"))
        if percent and key.lower() == "sl" and number >= 100:
            raise BadInput(f"A stop-loss of {esc(value)} below the price is not a price.")
        levels[key.lower()] = Level(number, percent=percent)
    return rest, levels


def _order_args(ctx: Context, rest: list[str], usage: str) -> tuple[str, float | None]:
    text = _need_symbol(rest, usage)
    # "/buy krakn BTC/USDT": the symbol came second, so the first word was an account.
    second_is_symbol = len(rest) == 2 and ctx.desk.normalize_symbol(rest[1]) is not None
    if second_is_symbol and ctx.desk.normalize_symbol(text) is None:
        raise BadInput(unknown_account(text, ctx.desk.labels))
    sym = symbol(ctx, text)
    quote = amount(rest[1]) if len(rest) == 2 else None
    return sym, quote


@command
async def buy(ctx: Context, args: list[str]) -> Reply:
    """A market buy of QUOTE_AMOUNT (default STAKE_AMOUNT) through the risk gate."""
    usage = "/buy [ACCOUNT] SYMBOL [QUOTE_AMOUNT] [sl=PRICE|PCT%] [tp=PRICE|PCT%]"
    args, levels = _levels(args)
    traders, rest = pick(ctx, args, max_rest=2, usage=usage)
    sym, quote = _order_args(ctx, rest, usage)
    listed, notes = knowing(traders, sym)
    stop, target = levels.get("sl"), levels.get("tp")
    results = await each(listed, lambda t: t.buy(sym, quote, stop=stop, target=target))

    def done(trader, r) -> str:
        text = (
            f"🟢 {esc(r.account)}: bought {num(r.amount)} {esc(r.symbol)} @ {num(r.price)}"
            f" = {money(r.cost)} {esc(trader.settings.quote)}"
        )
        if r.stop_loss is not None:
            where = "on exchange" if r.guard == "exchange" else "in bot"
            text += f" · stop {num(r.stop_loss)} {where}"
        if r.take_profit is not None:
            text += f" · target {num(r.take_profit)}"
        return text + (f" · {esc(r.reason)}" if r.reason else "")

    return outcome(_lines(results, done, f"buy {esc(sym)}") + notes, results)


@command
async def sell(ctx: Context, args: list[str]) -> Reply:
    """A market sell of the bot's own position in SYMBOL (never other holdings)."""
    usage = "/sell [ACCOUNT] SYMBOL"
    traders, rest = pick(ctx, args, max_rest=1, usage=usage)
    sym = symbol(ctx, _need_symbol(rest, usage))
    listed, notes = knowing(traders, sym)
    holders = [t for t in listed if sym in t.book.positions]
    results = await each(holders or listed, lambda t: t.sell(sym))

    def done(trader, r) -> str:
        text = (
            f"🔴 {esc(r.account)}: sold {num(r.amount)} {esc(r.symbol)} @ {num(r.price)}"
            f" = {money(r.cost)} {esc(trader.settings.quote)}"
        )
        if r.closed is not None:
            cost = r.closed.amount * r.closed.entry_price
            share = 100.0 * r.closed.pnl / cost if cost > 0 else 0.0
            text += f" · PnL {signed(r.closed.pnl)} ({share:+.2f} %)"
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
