"""What the command handlers share: which accounts a command is about, what symbol and amount
the user meant, running one operation on several traders at once, and how numbers read.

Bad input raises `BadInput` inside a handler; `@command` turns it into a refusal, so a handler
reads as its happy path and a refused command has changed nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from handlers.context import Context
from handlers.reply import Reply, esc, refuse
from trading.desk import UnknownAccount

if TYPE_CHECKING:
    from trading.engine import Trader

log = logging.getLogger("handlers")
R = TypeVar("R")


class BadInput(Exception):
    """The user's input cannot be acted on; the text (HTML, escaped) says why."""


def command(handler: Callable[[Context, list[str]], Awaitable[Reply]]):
    """Turn a BadInput raised anywhere in the handler into a refusal."""

    @functools.wraps(handler)
    async def wrapper(ctx: Context, args: list[str]) -> Reply:
        try:
            return await handler(ctx, args)
        except BadInput as bad:
            return refuse(str(bad))

    return wrapper


# ---- what the user named ---------------------------------------------------------------


def unknown_account(selector: str, known: Sequence[str]) -> str:
    listed = ", ".join(known) or "none"
    return f"No account {esc(selector)}. Known accounts: {esc(listed)}."


def pick(ctx: Context, args: list[str], *, max_rest: int, usage: str) -> tuple[list, list[str]]:
    """The traders a command is about and the arguments left. A first argument naming an
    account ("kraken", "binance:master", "all") selects; without one, every account."""
    traders = list(ctx.desk.traders)
    if not traders:
        raise BadInput("No account is configured: nothing to act on.")
    if args:
        try:
            chosen = ctx.desk.select(args[0])
        except UnknownAccount as exc:
            if len(args) > max_rest:
                raise BadInput(unknown_account(args[0], exc.known)) from None
        else:
            traders, args = chosen, args[1:]
    if len(args) > max_rest:
        raise BadInput(f"Too many arguments. Usage: {esc(usage)}")
    return traders, args


def check_accounts(ctx: Context, args: list[str]) -> str | None:
    """For commands whose only argument is an account: the refusal, before any confirmation."""
    try:
        pick(ctx, args, max_rest=0, usage="[ACCOUNT]")
    except BadInput as bad:
        return str(bad)
    return None


def symbol(ctx: Context, text: str) -> str:
    """The market the user meant ("btc", "BTC-USDT" -> "BTC/USDT") on some configured
    exchange, or BadInput."""
    found = ctx.desk.normalize_symbol(text)
    if found is not None:
        return found
    waiting = [t.label for t in ctx.desk.traders if not t.connector.markets]
    note = ""
    if waiting:
        note = f" (markets not loaded yet on {esc(', '.join(waiting))}: try again in a moment)"
    raise BadInput(f"Unknown symbol {esc(text)} on every configured exchange.{note}")


def amount(text: str) -> float:
    """A positive, finite quote amount ("50", "12.5", "1_000")."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise BadInput(
            f"Malformed amount {esc(text)}: expected a number of quote currency, e.g. 50."
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise BadInput(f"The amount must be a positive number, not {esc(text)}.")
    return value


def knowing(traders: list, sym: str) -> tuple[list, list[str]]:
    """Split traders into those listing `sym` and a line for each that does not."""
    listed = [t for t in traders if t.knows_symbol(sym)]
    notes = [f"{esc(t.label)}: {esc(sym)} is not listed there" for t in traders if t not in listed]
    if not listed:
        raise BadInput(f"{esc(sym)} is not listed on {esc(', '.join(t.label for t in traders))}.")
    return listed, notes


# ---- acting on several traders -----------------------------------------------------------


async def each(
    traders: list, op: Callable[[Trader], Awaitable[R]], *, ready: bool = True
) -> list[tuple[Any, Any]]:
    """Run `op` on every trader at once (one slow exchange must not delay the others);
    (trader, result or the exception a buggy operation raised), in the traders' order.

    A trader still on its first start waits for it first (bounded, see Trader.ready), so a
    command queued while the bot starts acts on the book as the exchange confirmed it;
    `ready=False` for /abort, which touches nothing and must not wait."""

    async def one(trader: Trader) -> R:
        if ready:
            await trader.ready()
        return await op(trader)

    results = await asyncio.gather(*(one(t) for t in traders), return_exceptions=True)
    out = []
    for trader, result in zip(traders, results, strict=True):
        if isinstance(result, Exception):
            log.error("%s: operation raised", trader.label, exc_info=result)
        elif isinstance(result, BaseException):
            raise result
        out.append((trader, result))
    return out


def failed(label: str, exc: Exception) -> str:
    return f"❗ {esc(label)}: internal error ({esc(type(exc).__name__)}: {esc(exc)})"


def outcome(lines: list[str], results: list[tuple[Any, Any]]) -> Reply:
    """A reply that is a refusal only when every account refused."""
    ok = any(not isinstance(r, Exception) and getattr(r, "ok", False) for _, r in results)
    return Reply(text="\n".join(lines), ok=ok)


# ---- how numbers read -------------------------------------------------------------------


def num(value: float) -> str:
    """Prices and amounts: up to 8 significant digits, thousands separated."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    text = f"{value:.8g}"
    if "e" in text:
        text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text


def money(value: float) -> str:
    """A money figure without its currency: `cash`, the one way money reads."""
    return cash(value)


def signed(value: float) -> str:
    """A gain or loss without its currency: `cash` with its sign."""
    return cash(value, sign=True)


def cash(value: float, quote: str = "", *, sign: bool = False) -> str:
    """Money, one way for every results command: thousands separated, to the cent from 1 up,
    four significant digits below (a 0.0042 USDT fee must not read 0.00), "+" on a gain when
    `sign`: "1,234.50 USDT", "+0.0042 USDT", "-12.00 USDT"."""
    if abs(value) < 1e-9:  # float dust, or -0.0: nothing to show a sign or digits for
        value = 0.0
    plus = "+" if sign else ""
    if value == 0 or abs(value) >= 1:
        text = f"{value:{plus},.2f}"
    else:
        decimals = min(10, 3 - math.floor(math.log10(abs(value))))
        text = f"{value:{plus}.{decimals}f}".rstrip("0")
        if len(text.split(".")[1]) < 2:
            text = f"{value:{plus}.2f}"
    return f"{text} {quote}" if quote else text


def percent(fraction: float, *, sign: bool = False) -> str:
    """A fraction as percent, no space: 0.0345 -> "3.45%", "+3.45%" with `sign`; one decimal
    from 10% up, two below."""
    value = fraction * 100 + 0.0
    plus = "+" if sign else ""
    return f"{value:{plus}.{1 if abs(value) >= 10 else 2}f}%"


def pct(fraction: float) -> str:
    """A fraction as percent: `percent`, the one way a percentage reads."""
    return percent(fraction)


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def span(seconds: float) -> str:
    """A duration: "3d 4h 5m", "2h 0m", "4m 12s"."""
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
