"""The one list of commands: name, handler, one-line help, arguments, confirmation.
/help, the phone's command menu (setMyCommands) and the console all come from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers import status
from handlers.context import Context
from handlers.reply import Reply, esc

Handler = Callable[[Context, list[str]], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: Handler
    help: str
    args: str = ""  # usage, e.g. "SYMBOL [QUOTE_AMOUNT]"
    confirm: bool = False  # destructive: ask first (`/name ... now` skips it)


async def help_(ctx: Context, args: list[str]) -> Reply:
    """Every command with its one-line help."""
    lines = ["<b>Commands</b>"]
    for c in COMMANDS:
        usage = f" {esc(c.args)}" if c.args else ""
        lines.append(f"/{c.name}{usage} - {esc(c.help)}")
    lines.append(
        "With several accounts, a first argument such as kraken or binance:master picks which."
    )
    return Reply(text="\n".join(lines))


COMMANDS: tuple[Command, ...] = (
    Command("ping", status.ping, "alive, uptime, last cycle per account"),
    Command("help", help_, "this list"),
)
