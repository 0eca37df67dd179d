"""`python -m chatbot` runs the bot; `python -m chatbot check` checks every account."""

from __future__ import annotations

import asyncio
import sys

from chatbot.config import from_environment, load_settings
from chatbot.logsetup import setup_logging

USAGE = "usage: python -m chatbot [check]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["check"]):
        print(USAGE, file=sys.stderr)
        return 2
    settings = from_environment(load_settings, "the bot")
    if settings is None:
        return 2
    setup_logging(settings.log_level, settings.secrets)
    if argv == ["check"]:
        from chatbot.check import run_check

        return asyncio.run(run_check(settings))
    from chatbot.app import run

    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
