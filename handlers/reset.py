"""/reset: start a paper or dry-run account afresh, on purpose.

The simulated balance goes back to PAPER_BALANCE with no orders, and the bot forgets the
positions and orders it held there without selling anything (trading/paper_reset.py). The
question names what would be dropped; a live account is refused before it is asked.
"""

from __future__ import annotations

from handlers.context import Context
from handlers.format import BadInput, command, each, failed, num, outcome, pick
from handlers.reply import Reply, esc
from trading.paper_reset import NOT_SIMULATED, resettable

USAGE = "/reset [ACCOUNT] [now]"


def check(ctx: Context, args: list[str]) -> str | None:
    """Refused at once: an unknown account, extra arguments, or only live accounts."""
    try:
        traders, _ = pick(ctx, args, max_rest=0, usage=USAGE)
    except BadInput as bad:
        return str(bad)
    if not any(resettable(t) for t in traders):
        labels = ", ".join(t.label for t in traders)
        return f"{esc(labels)}: {esc(NOT_SIMULATED)}."
    return None


def question(ctx: Context, args: list[str]) -> str | None:
    """What each account would lose, said before the owner confirms."""
    try:
        traders, _ = pick(ctx, args, max_rest=0, usage=USAGE)
    except BadInput:
        return None
    lines = ["⚠️ <b>Starting afresh</b>: the positions and orders below are dropped, not sold:"]
    for t in filter(resettable, traders):
        held = ", ".join(sorted(t.book.positions)) or "no position"
        starting = _amounts(t.connector.venue.starting_balances)
        lines.append(
            f"• {esc(t.label)}: {esc(held)}, {len(t.book.orders)} open order(s); "
            f"back to {esc(starting)}"
        )
    return "\n".join(lines)


@command
async def reset(ctx: Context, args: list[str]) -> Reply:
    """Every selected paper or dry-run account starts afresh; a live one refuses."""
    traders, _ = pick(ctx, args, max_rest=0, usage=USAGE)
    results = await each(traders, lambda t: t.reset_paper())
    blocks = []
    for trader, r in results:
        if isinstance(r, Exception):
            blocks.append(failed(trader.label, r))
        elif not r.ok:
            touched = r.before or r.positions or r.open_orders  # refused after the book cleared
            lines = _dropped(r) if touched else []
            blocks.append("\n".join([f"✋ {esc(r.account)}: {esc(r.reason)}", *lines]))
        else:
            head = f"🧹 {esc(r.account)}: started afresh with {esc(_amounts(r.after))}"
            blocks.append("\n".join([head, *_dropped(r)]))
    return outcome(blocks, results)


def _dropped(r) -> list[str]:
    lines = [f"the account held {esc(_amounts(r.before))}"]
    if not r.positions and not r.open_orders:
        return [*lines, "the bot held no position and no open order there"]
    lines.append(
        f"dropped from the bot's book, not sold: {len(r.positions)} position(s), "
        f"{len(r.open_orders)} open order(s)"
    )
    lines.extend(
        f"• {esc(p.symbol)} {num(p.amount)} (entry {num(p.entry_price)})" for p in r.positions
    )
    return lines


def _amounts(totals: dict[str, float]) -> str:
    return ", ".join(f"{num(v)} {c}" for c, v in sorted(totals.items())) or "nothing"
