"""/ack: stop the repeats of the current emergencies (Telegram and the pagers).

Acknowledging silences the alarm, it does not fix anything: the reply says which conditions are
still open, so the human knows what still needs them.
"""

from __future__ import annotations

from handlers.context import Context
from handlers.format import BadInput, command
from handlers.reply import Reply, esc


@command
async def ack(ctx: Context, args: list[str]) -> Reply:
    """Acknowledge every emergency that is still repeating."""
    if args:
        raise BadInput("/ack takes no arguments: it acknowledges every open emergency.")
    if ctx.notifier is None:
        raise BadInput("No notifier is running here: there is nothing to acknowledge.")
    acked = ctx.notifier.ack()
    stats = ctx.notifier.stats()
    open_ = list(getattr(stats, "active_emergencies", ()))
    if acked:
        lines = [
            f"🔕 Acknowledged {acked} emergenc{'y' if acked == 1 else 'ies'}: no more repeats."
        ]
    else:
        lines = ["Nothing to acknowledge: no emergency is repeating."]
    if open_:
        lines.append("Still open (a new occurrence alerts again):")
        lines.extend(f"• <code>{esc(a.key)}</code> (raised {a.count}×)" for a in open_)
    return Reply(text="\n".join(lines))
