"""/kill /stop /abort /pause /unpause /resume /sync: the trader's modes, from the phone.

Each command runs its operation on every selected account at once (a slow exchange must not
delay the kill of another account) and reports one block per account. A trader that refuses
(`/unpause` while running) says why, and nothing changed there.
"""

from __future__ import annotations

import asyncio

from handlers.context import Context
from handlers.format import (
    BadInput,
    command,
    each,
    failed,
    num,
    outcome,
    pick,
    signed,
    unknown_account,
)
from handlers.reply import Reply, esc
from trading.events import StateChanged, replying
from trading.modes import Mode


def _left(what: str) -> str:
    return f"\nstill in the account: {esc(what)}" if what else ""


def _refused(label: str, reason: str) -> str:
    return f"✋ {esc(label)}: {esc(reason)}"


async def _modes(ctx: Context, args: list[str], name: str, op, done) -> Reply:
    """Run a mode operation (pause, unpause, resume, stop) and format each account's result."""
    traders, _ = pick(ctx, args, max_rest=0, usage=f"/{name} [ACCOUNT]")
    with replying(StateChanged):  # the reply says the new mode
        results = await each(traders, op)
    lines = []
    for trader, r in results:
        if isinstance(r, Exception):
            lines.append(failed(trader.label, r))
        elif not r.ok:
            lines.append(_refused(r.account, r.reason))
        else:
            lines.append(done(trader, r))
    return outcome(lines, results)


# ---- pause / unpause / resume / stop -----------------------------------------------------


HANDS_OFF = "hands-off"


def _pause_args(ctx: Context, args: list[str]) -> tuple[list, bool]:
    traders, rest = pick(ctx, args, max_rest=1, usage="/pause [ACCOUNT] [hands-off]")
    if rest and rest[0].lower() != HANDS_OFF:
        if len(args) == 1:  # meant as an account
            raise BadInput(unknown_account(args[0], ctx.desk.labels))
        raise BadInput(f"Unknown option {esc(rest[0])}. Usage: /pause [ACCOUNT] [hands-off]")
    return traders, bool(rest)


def pause_question(ctx: Context, args: list[str]) -> str | None:
    """A hands-off pause is confirmed first: it leaves positions unprotected."""
    try:
        _, hands_off = _pause_args(ctx, args)
    except BadInput:
        return None  # the handler refuses it
    if not hands_off:
        return None
    return (
        "⚠️ <b>Hands-off</b>: every order is cancelled and nothing is sold, not even at a "
        "stop-loss: positions are unprotected until /unpause."
    )


@command
async def pause(ctx: Context, args: list[str]) -> Reply:
    """No entries, no strategy exits, no flattening; positions keep their stop-loss and
    take-profit (`hands-off`: nothing at all is sold)."""
    traders, hands_off = _pause_args(ctx, args)
    with replying(StateChanged):
        results = await each(traders, lambda t: t.pause(hands_off=hands_off))
    lines = []
    for trader, r in results:
        if isinstance(r, Exception):
            lines.append(failed(trader.label, r))
        elif not r.ok:
            lines.append(_refused(r.account, r.reason))
        else:
            lines.append(_paused(r))
    return outcome(lines, results)


def _paused(r) -> str:
    label = esc(r.account)
    if r.old == r.mode:
        return f"⏸ {label}: {esc(r.reason)}"
    if r.mode is Mode.HANDS_OFF:
        text = f"✋ {label}: <b>hands-off</b> (was {esc(r.old)}): nothing will be sold"
        if r.positions:
            text += f"; {r.positions} position(s) <b>unprotected</b>"
    else:
        text = f"⏸ {label}: paused (was {esc(r.old)}): no entries"
        if r.positions:
            text += f"; {r.positions} position(s) keep their stop-loss and take-profit"
    if r.old in (Mode.KILLED, Mode.FAILSAFE, Mode.STOPPING):
        text += f"; the {esc(r.old)} exits stopped (/unpause goes back to them)"
    if r.cancelled:
        text += f"; {r.cancelled} open order(s) cancelled"
    if r.reason:
        text += f"\n⚠️ not all cancelled yet ({esc(r.reason)}); the next cycle retries"
    return text


@command
async def unpause(ctx: Context, args: list[str]) -> Reply:
    """Back to what the pause interrupted."""

    def done(trader, r) -> str:
        if r.mode is Mode.RUNNING:
            return f"▶️ {esc(r.account)}: running again"
        return f"▶️ {esc(r.account)}: back to {esc(r.mode)}: exiting {r.exiting} position(s)"

    return await _modes(ctx, args, "unpause", lambda t: t.unpause(), done)


def resume_question(ctx: Context, args: list[str]) -> str | None:
    """/resume is confirmed first when it leaves something unresolved, named here."""
    try:
        traders, _ = pick(ctx, args, max_rest=0, usage="/resume [ACCOUNT]")
    except BadInput:
        return None
    lines = [
        f"• {esc(t.label)}: {esc(note)}"
        for t in traders
        if t.mode is not Mode.RUNNING
        for note in t.unresolved()
    ]
    if not lines:
        return None
    return "⚠️ <b>Unresolved</b>: resuming leaves this as it is:\n" + "\n".join(lines)


@command
async def resume(ctx: Context, args: list[str]) -> Reply:
    """Trade again from any mode."""

    def done(trader, r) -> str:
        text = f"▶️ {esc(r.account)}: running again (was {esc(r.old)})"
        if r.reason:
            text += f"\nleft as it was: {esc(r.reason)}"
        return text

    return await _modes(ctx, args, "resume", lambda t: t.resume(), done)


@command
async def stop(ctx: Context, args: list[str]) -> Reply:
    """No new entries; exit every position with limit orders, then STOPPED."""

    def done(trader, r) -> str:
        if r.mode is Mode.STOPPED:
            left = trader.leftovers()
            if not left:
                return f"⏹ {esc(r.account)}: stopped, nothing left to exit"
            return f"⏹ {esc(r.account)}: stopped; every position the bot could sell is sold" + (
                _left("; ".join(left))
            )
        if r.old is Mode.STOPPING:
            return f"⏹ {esc(r.account)}: already stopping: exiting {r.exiting} position(s)"
        timeout = trader.settings.stop_exit_timeout_seconds
        return (
            f"⏹ {esc(r.account)}: stopping: exiting {r.exiting} position(s) with limit orders, "
            f"at market after {timeout:.0f} s; /resume when done, /kill to exit at once"
        )

    return await _modes(ctx, args, "stop", lambda t: t.stop(), done)


# ---- kill -------------------------------------------------------------------------------


@command
async def kill(ctx: Context, args: list[str]) -> Reply:
    """Stop and market-exit every position of every selected account, at once."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/kill [ACCOUNT] [now]")
    results = await each(traders, lambda t: t.kill())
    blocks = []
    for trader, r in results:
        if isinstance(r, Exception):
            blocks.append(failed(trader.label, r))
        elif not r.ok:
            flat = " and flat" if r.flat and not r.left else ""
            blocks.append(_refused(r.account, r.reason + flat) + _left("; ".join(r.left)))
        else:
            blocks.append("\n".join(_kill_lines(r)))
    return outcome(blocks, results)


def _kill_lines(r) -> list[str]:
    label = esc(r.account)
    if r.flat and r.left:
        head = f"🛑 {label}: killed; every position the bot could sell is sold in {r.seconds:.1f} s"
    elif r.flat:
        head = f"🛑 {label}: killed and flat in {r.seconds:.1f} s"
    else:
        head = f"⚠️ {label}: killed, <b>NOT flat yet</b> after {r.seconds:.1f} s"
    head += f" · {len(r.closed)} position(s) sold, {r.cancelled} order(s) cancelled"
    lines = [head]
    for t in r.closed:
        lines.append(
            f"• {esc(t.symbol)} {num(t.amount)} @ {num(t.exit_price)} · PnL {signed(t.pnl)}"
        )
    if r.remaining:
        lines.append(f"still holding {esc(', '.join(r.remaining))}: retrying until flat")
    elif r.reason:
        lines.append(esc(r.reason))
    if r.left:
        lines.append("still in the account, not the bot's to sell:")
        lines.extend(f"• {esc(note)}" for note in r.left)
    lines.extend(f"problem: {esc(p)}" for p in r.problems[-3:])
    return lines


# ---- abort ------------------------------------------------------------------------------


@command
async def abort(ctx: Context, args: list[str]) -> Reply:
    """Stop every trader where it stands and end the process, touching nothing."""
    if args:
        raise BadInput("/abort ends the whole process; it takes no account.")
    if not ctx.desk.traders:
        raise BadInput("No account is configured.")
    results = await each(list(ctx.desk.traders), lambda t: t.abort(), ready=False)
    lines = ["🛑 <b>Aborting</b>: trading stopped; nothing was cancelled or sold."]
    for trader, r in results:
        if isinstance(r, Exception):
            lines.append(failed(trader.label, r))
            continue
        lines.append(f"<b>{esc(r.account)}</b> ({esc(r.mode)}) stays open at the exchange:")
        if not r.positions and not r.open_orders:
            lines.append("nothing: flat, no open orders")
        lines.extend(
            f"• {esc(p.symbol)} {num(p.amount)} (entry {num(p.entry_price)})" for p in r.positions
        )
        lines.extend(
            f"• order {esc(o.side)} {num(o.remaining)} {esc(o.symbol)}"
            + (f" @ {num(o.price)}" if o.price else "")
            for o in r.open_orders
        )
    if ctx.abort is not None:
        lines.append("The process ends now. On restart it reconciles with the exchanges.")
        # Called on the next loop iteration: the transport has this reply in hand by then and
        # sends it before the shutdown completes (Telegram's stop waits for running handlers).
        asyncio.get_running_loop().call_soon(ctx.abort)
    else:
        lines.append("This transport cannot end the process: it keeps running, not trading.")
    return Reply(text="\n".join(lines))


# ---- sync -------------------------------------------------------------------------------


@command
async def sync(ctx: Context, args: list[str]) -> Reply:
    """Reload balances and open orders from the exchanges; report every difference."""
    traders, _ = pick(ctx, args, max_rest=0, usage="/sync [ACCOUNT]")
    results = await each(traders, lambda t: t.sync())
    blocks = []
    for trader, r in results:
        if isinstance(r, Exception):
            blocks.append(failed(trader.label, r))
            continue
        if not r.ok:
            blocks.append(_refused(r.account, f"not synced: {r.reason}"))
            continue
        head = (
            f"🔄 {esc(r.account)}: synced · {r.positions} position(s), "
            f"{r.open_orders} open order(s) · "
        )
        if not r.differences:
            blocks.append(head + "no differences")
            continue
        lines = [head + f"{len(r.differences)} difference(s):"]
        lines.extend(_difference(d) for d in r.differences)
        blocks.append("\n".join(lines))
    return outcome(blocks, results)


def _difference(d) -> str:
    where = f" {esc(d.symbol)}" if d.symbol else ""
    return f"• {esc(d.kind)}{where}: {esc(d.detail)}"
