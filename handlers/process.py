"""/roll, /cancel, /version: small questions to the live process itself.

/roll is the seed's dice: a random number the running process draws, a liveness check that
costs nothing and touches no exchange. /cancel drops a confirmation still waiting for its tap.
/version says what code is running (the libraries' versions are in /debug).
"""

from __future__ import annotations

import random

from handlers.context import Context
from handlers.format import BadInput, command, span
from handlers.reply import Reply, esc

_DICE = random.SystemRandom()


@command
async def roll(ctx: Context, args: list[str]) -> Reply:
    """A die thrown by the running process."""
    if args:
        raise BadInput("/roll takes no arguments.")
    up = span(ctx.clock.time() - ctx.desk.started_at) if ctx.desk is not None else "?"
    return Reply(text=f"🎲 {_DICE.randint(1, 6)} (thrown by the live process, up {up})")


@command
async def cancel(ctx: Context, args: list[str]) -> Reply:
    """Drop the confirmations still waiting for a tap."""
    if args:
        raise BadInput("/cancel takes no arguments: it drops every open confirmation.")
    dropped = ctx.drop_confirmations()
    if not dropped:
        return Reply(text="Nothing to cancel: no confirmation is waiting.")
    lines = [f"Cancelled {esc(line)}: nothing done." for line in dropped]
    return Reply(text="\n".join(lines))


@command
async def version(ctx: Context, args: list[str]) -> Reply:
    """The bot's own version."""
    if args:
        raise BadInput("/version takes no arguments.")
    own = ctx.versions.get("chatbot", "unknown")
    return Reply(text=f"chatbot {esc(own)} (libraries: /debug)")
