"""/orders and /cancelorder: the working orders under short ids, and the cancel of one of the
bot's (never the owner's own). A protective stop is cancelled only after a confirmation that
says what it leaves: the position unguarded until the next cycle rests the stop again."""

from __future__ import annotations

from handlers.context import Context
from handlers.format import BadInput, command, each, failed, num, outcome, pick, span
from handlers.reply import Reply, esc
from trading.order_commands import WorkingOrder

USAGE = "/cancelorder ID"


@command
async def orders(ctx: Context, args: list[str]) -> Reply:
    """Every working order of the selected accounts: the bot's, then the owner's own."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/orders [ACCOUNT]")
    blocks = []
    for trader in traders:
        r = trader.order_commands.orders()
        if not r.orders:
            blocks.append(f"<b>{esc(r.account)}</b>: no working orders")
            continue
        lines = [f"<b>{esc(r.account)}</b>: {len(r.orders)} working order(s)"]
        lines.extend(order_line(w) for w in r.orders)
        if any(w.theirs for w in r.orders):
            lines.append("<i>yours: placed outside the bot, which never touches them</i>")
        blocks.append("\n".join(lines))
    blocks.append("/cancelorder ID cancels one of the bot's.")
    return Reply(text="\n".join(blocks))


def order_line(w: WorkingOrder) -> str:
    at = ""
    if w.stop_price is not None:
        at = f" stop {num(w.stop_price)}"
    if w.price is not None:
        at += f" @ {num(w.price)}"
    filled = f", {num(w.filled)} filled" if w.filled else ""
    unsure = " (outcome unknown)" if not w.confirmed else ""
    return (
        f"• <code>{esc(w.short_id)}</code> {esc(w.purpose)} · {esc(w.side)} {num(w.amount)} "
        f"{esc(w.symbol)} {esc(w.type)}{esc(at)}{filled} · {span(w.age)} old{unsure}"
    )


def _holder(ctx: Context, args: list[str]):
    """(trader, order) the ID names, or BadInput: unknown, or not exactly one id."""
    if len(args) != 1:
        raise BadInput(f"Which order? Usage: {esc(USAGE)} (/orders lists the ids)")
    for trader in ctx.desk.traders:
        found = trader.order_commands.find(args[0])
        if found is not None:
            return trader, found
    raise BadInput(f"No working order {esc(args[0])}: /orders lists the ids.")


def check(ctx: Context, args: list[str]) -> str | None:
    """Refuse an unknown id or the owner's own order before any confirmation is asked."""
    try:
        _, found = _holder(ctx, args)
    except BadInput as bad:
        return str(bad)
    if found.theirs:
        return (
            f"✋ Order {esc(found.short_id)} ({esc(found.symbol)}) is yours, not the bot's: "
            "the bot never cancels your orders."
        )
    return None


def question(ctx: Context, args: list[str]) -> str | None:
    """Only a protective stop asks first: cancelling it leaves the position unguarded."""
    trader, found = _holder(ctx, args)
    if not found.protective:
        return None
    return (
        f"⚠️ <b>{esc(found.short_id)} is the protective stop of {esc(found.symbol)}</b> on "
        f"{esc(trader.label)}: without it the position is unguarded until the next cycle "
        "rests it again (never while hands-off)."
    )


@command
async def cancelorder(ctx: Context, args: list[str]) -> Reply:
    """Cancel one of the bot's working orders by its short id."""
    trader, found = _holder(ctx, args)
    results = await each([trader], lambda t: t.order_commands.cancel(found.short_id))
    lines = []
    for t, r in results:
        if isinstance(r, Exception):
            lines.append(failed(t.label, r))
        elif not r.ok:
            lines.append(f"✋ {esc(r.account)}: cancel refused: {esc(r.reason)}")
        else:
            lines.append(_cancelled(r))
    return outcome(lines, results)


def _cancelled(r) -> str:
    w = r.order
    text = (
        f"❎ {esc(r.account)}: {esc(w.purpose)} order {esc(w.short_id)} ({esc(w.symbol)}) "
        "cancelled"
    )
    if r.closed:
        text += f"; it had filled {num(sum(t.amount for t in r.closed))} before"
    if r.guard_back:
        text += (
            f"\n⚠️ {esc(w.symbol)} is unguarded until the next cycle rests its stop again "
            "(/pause hands-off keeps it off)"
        )
    elif r.unguarded:
        text += f"\n⚠️ {esc(w.symbol)} stays unguarded: the trader is {esc(r.mode)}"
    return text
