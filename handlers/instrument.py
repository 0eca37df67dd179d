"""/debug [ACCOUNT] [SYMBOL]: without a symbol the process's own state (handlers/status.py);
with one, the instrument on every account listing it: market limits and precision, ticker,
spread, 24 h volume, the bot's position and orders in it, ban and cooldown, the strategy's
reading now, and the library versions."""

from __future__ import annotations

import asyncio

from handlers import status
from handlers.context import Context
from handlers.format import (
    BadInput,
    cash,
    command,
    each,
    failed,
    knowing,
    num,
    percent,
    pick,
    span,
    symbol,
    unknown_account,
)
from handlers.orders import order_line
from handlers.reply import Reply, esc

USAGE = "/debug [ACCOUNT] [SYMBOL]"


@command
async def debug(ctx: Context, args: list[str]) -> Reply:
    traders, rest = pick(ctx, args, max_rest=1, usage=USAGE)
    if not rest:
        return await status.debug(ctx, args)
    # A command typed as the bot starts: the symbol is known once the markets loaded.
    await asyncio.gather(*(t.ready() for t in traders))
    if len(args) == 1 and ctx.desk.normalize_symbol(rest[0]) is None:
        # One word that is neither: name the accounts, as every account-taking command does.
        raise BadInput(f"{unknown_account(rest[0], ctx.desk.labels)} Nor is it a symbol.")
    sym = symbol(ctx, rest[0])
    listed, notes = knowing(traders, sym)
    results = await each(listed, lambda t: t.instrument.report(sym))
    versions = ", ".join(f"{esc(k)} {esc(v)}" for k, v in sorted(ctx.versions.items()))
    blocks = [f"<b>Debug {esc(sym)}</b>"]
    for trader, r in results:
        if isinstance(r, Exception):
            blocks.append(failed(trader.label, r))
        else:
            blocks.append("\n".join(_report(trader.settings.quote, r)))
    blocks.extend(notes)
    blocks.append(f"versions: {versions or 'unknown'}")
    return Reply(text="\n".join(blocks))


def _report(quote: str, r) -> list[str]:
    m = r.market
    lines = [f"<b>{esc(r.account)}</b> · {esc(r.mode)}"]
    lines.append(
        f"market: min amount {num(m.min_amount)} · min value {cash(m.min_cost, quote)} · "
        f"amount step {_step(m.amount_step)} · price step {_step(m.price_step)}"
        + ("" if m.active else " · <b>inactive</b>")
    )
    t = r.ticker
    if t is None:
        lines.append(f"ticker: none ({esc(r.ticker_error or 'not returned')})")
    else:
        spread = (t.ask - t.bid) / t.last if t.last > 0 else 0.0
        lines.append(
            f"ticker: last {num(t.last)} · bid {num(t.bid)} · ask {num(t.ask)} · "
            f"spread {percent(spread)} · 24 h {percent(t.change_pct / 100, sign=True)} · "
            f"volume {cash(t.quote_volume, quote)}"
        )
    p = r.position
    if p is None:
        lines.append("position: none")
    else:
        who = "yours by /buy" if p.manual else "the strategy's"
        stop = num(p.stop_loss) if p.stop_loss is not None else "none"
        target = num(p.take_profit) if p.take_profit is not None else "none"
        lines.append(
            f"position: {num(p.amount)} @ {num(p.entry_price)} ({who}) · stop {stop} · "
            f"target {target}"
        )
    lines.append(f"orders: {len(r.orders)}" if r.orders else "orders: none")
    lines.extend(order_line(w) for w in r.orders)
    lines.append(f"ban: {esc(r.ban.reason)}" if r.ban else "ban: none")
    cooldown = f"{span(r.cooldown_left)} left" if r.cooldown_left > 0 else "none"
    lines.append(f"cooldown: {cooldown}")
    if "\n" in r.reading:  # the strategy's own checklist: one condition a line
        lines.append(f"{esc(r.strategy)}, condition by condition:")
        lines.extend(esc(line) for line in r.reading.splitlines())
    else:
        mark = "✅" if r.would_enter else "·"
        lines.append(f"{esc(r.strategy)}: {mark} {esc(r.reading)}")
    return lines


def _step(step: float | None) -> str:
    return num(step) if step else "any"
