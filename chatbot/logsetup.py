"""Logging: one line per event (time, level, component), with secrets redacted centrally.

Redaction happens in the formatter, after the message and any traceback are rendered, so a
key inside an exception text or a URL (httpx logs the bot token in every request URL) is
replaced as well.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import deque
from collections.abc import Iterable

from chatbot.config_reader import Secret

REDACTED = "***"
# Telegram bot tokens look like this wherever they appear (URLs included).
TOKEN_PATTERN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


KEEP_LINES = 500  # log lines /logs can show


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[Secret | str] = (), fmt: str = FORMAT) -> None:
        super().__init__(fmt, datefmt="%Y-%m-%d %H:%M:%S")
        self._secrets: list[str] = []
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[Secret | str]) -> None:
        values = (s.get() if isinstance(s, Secret) else s for s in secrets)
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted(
            {*self._secrets, *(v for v in values if v and len(v) >= 4)}, key=len, reverse=True
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, REDACTED)
    return TOKEN_PATTERN.sub(REDACTED, text)


class RecentLines(logging.Handler):
    """The last log lines, formatted (so redacted) as the log shows them, for /logs."""

    def __init__(self, keep: int = KEEP_LINES) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line must never break the code that logs it
            self.handleError(record)

    def last(self, n: int) -> list[str]:
        return list(self.lines)[-n:] if n > 0 else []


RECENT = RecentLines()


def setup_logging(level: str = "INFO", secrets: Iterable[Secret | str] = ()) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_chatbot", False):
            root.removeHandler(handler)
    formatter = RedactingFormatter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler._chatbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    RECENT.setFormatter(formatter)
    RECENT._chatbot = True  # type: ignore[attr-defined]
    root.addHandler(RECENT)
    root.setLevel(level)
    # Request-per-line chatter from the HTTP clients is noise; their warnings still show.
    for noisy in ("httpx", "httpcore", "apscheduler", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
