"""The one list of commands: name, handler, one-line help, arguments, confirmation.
/help, the phone's command menu (setMyCommands) and the console all come from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers import (
    alerts,
    chart,
    control,
    instrument,
    orders,
    process,
    recording,
    reset,
    results,
    status,
    symbols,
)
from handlers.context import Context
from handlers.format import check_accounts
from handlers.reply import Reply, esc

Handler = Callable[[Context, list[str]], Awaitable[Reply]]
Check = Callable[[Context, list[str]], str | None]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: Handler
    help: str
    args: str = ""  # usage, e.g. "SYMBOL [QUOTE_AMOUNT]"
    confirm: bool = False  # destructive: ask first (`/name ... now` skips it)
    # Validates the arguments before a confirmation is asked for (a refusal text, or None), so
    # a typo is refused at once instead of after the user pressed Confirm.
    check: Check | None = None
    # Asks for a confirmation only in some cases (a hands-off pause, a /resume that leaves
    # something unresolved): the question's heading (HTML), or None to run at once.
    ask: Check | None = None


async def help_(ctx: Context, args: list[str]) -> Reply:
    """Every command with its one-line help."""
    lines = ["<b>Commands</b>"]
    for c in COMMANDS:
        usage = f" {esc(c.args)}" if c.args else ""
        confirm = " (asks to confirm; add now to skip)" if c.confirm or c.ask else ""
        lines.append(f"/{c.name}{usage} - {esc(c.help)}{confirm}")
    lines.append(
        "With several accounts, a first argument such as kraken or binance:master picks which."
    )
    return Reply(text="\n".join(lines))


def _no_args(ctx: Context, args: list[str]) -> str | None:
    return "/abort ends the whole process; it takes no account." if args else None


COMMANDS: tuple[Command, ...] = (
    Command("ping", status.ping, "alive, uptime, last cycle per account"),
    Command("info", status.info, "balances, positions, PnL, exposure, API health", "[ACCOUNT]"),
    Command(
        "kill",
        control.kill,
        "stop and exit every position at market now",
        "[ACCOUNT] [now]",
        confirm=True,
        check=check_accounts,
    ),
    Command(
        "stop",
        control.stop,
        "stop and exit every position with limit orders",
        "[ACCOUNT] [now]",
        confirm=True,
        check=check_accounts,
    ),
    Command(
        "abort",
        control.abort,
        "end the process now, leaving positions and orders as they are",
        "[now]",
        confirm=True,
        check=_no_args,
    ),
    Command(
        "pause",
        control.pause,
        "no entries, open orders cancelled; positions keep their stops "
        "(hands-off: nothing is sold at all)",
        "[ACCOUNT] [hands-off]",
        ask=control.pause_question,
    ),
    Command("unpause", control.unpause, "back to what /pause interrupted", "[ACCOUNT]"),
    Command(
        "resume",
        control.resume,
        "trade again from any mode (after /stop, /kill, a failsafe, a halt)",
        "[ACCOUNT]",
        ask=control.resume_question,
    ),
    Command("sync", control.sync, "reload state from the exchanges, show differences", "[ACCOUNT]"),
    Command(
        "reset",
        reset.reset,
        "start a paper or dry-run account afresh: starting balance, no orders, nothing sold",
        "[ACCOUNT] [now]",
        confirm=True,
        check=reset.check,
        ask=reset.question,
    ),
    Command("ban", symbols.ban, "never trade a symbol", "[ACCOUNT] SYMBOL"),
    Command("unban", symbols.unban, "allow a banned symbol again", "[ACCOUNT] SYMBOL"),
    Command("bans", symbols.bans, "the banned symbols", "[ACCOUNT]"),
    Command("locks", symbols.locks, "cooldowns and loop-guard bans, time left", "[ACCOUNT]"),
    Command(
        "unlock",
        symbols.unlock,
        "clear a symbol's cooldown and loop-guard ban",
        "[ACCOUNT] SYMBOL",
    ),
    Command(
        "buy",
        symbols.buy,
        "buy through the risk gate, at market or at a limit below it, with a stop and a target",
        "[ACCOUNT] SYMBOL [QUOTE_AMOUNT] [limit=PRICE] [sl=PRICE|PCT%] [tp=PRICE|PCT%]",
    ),
    Command(
        "sell",
        symbols.sell,
        "sell the bot's position at market: all, an amount or a percentage",
        "[ACCOUNT] SYMBOL [AMOUNT|PCT%]",
    ),
    Command("orders", orders.orders, "working orders with short ids, yours marked", "[ACCOUNT]"),
    Command(
        "cancelorder",
        orders.cancelorder,
        "cancel one of the bot's working orders (a protective stop asks first)",
        "ID",
        check=orders.check,
        ask=orders.question,
    ),
    Command(
        "chart",
        chart.chart,
        "equity curve or daily profit as a picture",
        "[ACCOUNT] [PERIOD | pnl [DAYS]]",
    ),
    Command(
        "balance",
        results.balance,
        "every currency held and its value; the bot's positions apart from your coins",
        "[ACCOUNT]",
    ),
    Command("trades", results.trades, "the last closed trades", "[ACCOUNT] [N]"),
    Command(
        "profit",
        results.profit,
        "realized and open profit, fees, win rate, best/worst trade, drawdown",
        "[ACCOUNT] [DAYS]",
    ),
    Command("daily", results.daily, "profit per day (UTC)", "[ACCOUNT] [N]"),
    Command("weekly", results.weekly, "profit per week (UTC, from Monday)", "[ACCOUNT] [N]"),
    Command("monthly", results.monthly, "profit per month (UTC)", "[ACCOUNT] [N]"),
    Command("performance", results.performance, "profit per symbol, the best first", "[ACCOUNT]"),
    Command(
        "record",
        recording.record,
        "keep the candles and tickers the scans read on disk, for the backtest",
        "[on|off]",
    ),
    Command("ack", alerts.ack, "acknowledge the current emergencies"),
    Command("cancel", process.cancel, "drop the confirmations still waiting for a tap"),
    Command("roll", process.roll, "a die thrown by the live process (a liveness check)"),
    Command("version", process.version, "the bot's own version"),
    Command("logs", process.logs, "the last log lines, secrets hidden", "[N]"),
    Command(
        "debug",
        instrument.debug,
        "versions, settings, clocks, circuits, queues, jobs; with a symbol: that instrument",
        "[ACCOUNT] [SYMBOL]",
    ),
    Command("help", help_, "this list"),
)
