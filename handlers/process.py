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


MAX_LOG_LINES = 100


@command
async def logs(ctx: Context, args: list[str]) -> Reply:
    """The last N log lines, redacted as the log already is."""
    if len(args) > 1:
        raise BadInput("Usage: /logs [N]")
    n = 20
    if args:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_LOG_LINES:
            raise BadInput(f"N must be a whole number from 1 to {MAX_LOG_LINES}.")
        n = int(args[0])
    if ctx.logs is None:
        raise BadInput("No log is kept here.")
    lines = ctx.logs(n)
    if not lines:
        return Reply(text="The log is empty.")
    return Reply(text="<pre>" + esc("\n".join(lines)) + "</pre>")


@command
async def version(ctx: Context, args: list[str]) -> Reply:
    """The bot's own version."""
    if args:
        raise BadInput("/version takes no arguments.")
    own = ctx.versions.get("chatbot", "unknown")
    return Reply(text=f"chatbot {esc(own)} (libraries: /debug)")
