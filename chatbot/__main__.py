"""`python -m chatbot` runs the bot; `python -m chatbot check` checks every account;
`python -m chatbot backtest ...` replays recorded candles through the engine (chatbot/backtest.py);
`python -m chatbot download ...` fetches candle history for it (chatbot/download.py).

Exit status 2 is a configuration the bot refuses (nothing started, no exchange touched): a bad
variable, real orders without a channel that can stop them, or a saved paper account it cannot
read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from chatbot.config import from_environment, load_settings, print_problems
from chatbot.logsetup import setup_logging

USAGE = "usage: python -m chatbot [check | backtest [--help] | download [--help]]"

log = logging.getLogger("chatbot.config")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["backtest"]:
        from chatbot.backtest import main as backtest

        return backtest(argv[1:])
    if argv[:1] == ["download"]:
        from chatbot.download import main as download

        return download(argv[1:])
    if argv not in ([], ["check"]):
        print(USAGE, file=sys.stderr)
        return 2
    settings = from_environment(load_settings, "the bot")
    if settings is None:
        return 2
    setup_logging(settings.log_level, settings.secrets)
    for warning in settings.warnings:
        log.warning("%s", warning)
    if argv == ["check"]:
        from chatbot.check import run_check

        return asyncio.run(run_check(settings))
    from chatbot.venues import channel_refusal

    refusal = channel_refusal(settings, terminal=_stdin_is_a_terminal())
    if refusal is not None:
        print_problems([refusal], "the bot")
        return 2
    from chatbot.app import run

    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 130


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # no stdin, or closed
        return False


if __name__ == "__main__":
    sys.exit(main())
