"""`python -m chatbot` runs the bot; `python -m chatbot check` checks every account."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from dotenv import load_dotenv

from chatbot.config import ConfigError, load_settings
from chatbot.logsetup import setup_logging

USAGE = "usage: python -m chatbot [check]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["check"]):
        print(USAGE, file=sys.stderr)
        return 2
    # A .env in the working directory fills in what the environment does not set.
    load_dotenv(Path.cwd() / ".env", override=False)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print("Configuration error (nothing was started):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("See .env.example for every variable and its default.", file=sys.stderr)
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
