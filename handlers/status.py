"""/ping: is the bot alive, and when did each account last complete a cycle."""

from __future__ import annotations

from handlers.context import Context
from handlers.reply import Reply, esc


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


async def ping(ctx: Context, args: list[str]) -> Reply:
    """Alive, uptime, last cycle per account. Reads memory only: never waits on an exchange."""
    desk = ctx.desk
    now = ctx.clock.time()
    lines = [f"<b>pong</b> - up {duration(now - desk.started_at)}"]
    for trader in desk.traders:
        last = trader.last_cycle_at
        lines.append(
            f"{esc(trader.label)}: {esc(trader.mode)}, last cycle "
            f"{ago(None if last is None else now - last)}"
        )
    if not desk.traders:
        lines.append("no accounts are trading")
    return Reply(text="\n".join(lines))
