"""Secrets never reach a log line: not in messages, exception texts or URLs."""

from __future__ import annotations

import io
import logging

from chatbot.config import Secret
from chatbot.logsetup import RedactingFormatter

TOKEN = "123456789:AAHfakefakefakefakefakefakefakefake12"


def render(formatter: logging.Formatter, log: logging.Logger, emit) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        emit()
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_registered_secrets_are_redacted_in_messages_and_tracebacks():
    formatter = RedactingFormatter([Secret("apikey-12345"), "s3cr3t-value"])
    log = logging.getLogger("test.redact.1")

    def emit():
        log.warning("using key apikey-12345 for %s", "acct")
        try:
            raise RuntimeError("signature failed with secret s3cr3t-value")
        except RuntimeError:
            log.exception("call failed")

    text = render(formatter, log, emit)
    assert "apikey-12345" not in text and "s3cr3t-value" not in text
    assert "using key *** for acct" in text
    assert "RuntimeError: signature failed with secret ***" in text
    assert "RuntimeError" in text  # the traceback itself is kept


def test_bot_token_in_a_url_is_redacted_even_when_not_registered():
    log = logging.getLogger("test.redact.2")
    text = render(
        RedactingFormatter(),
        log,
        lambda: log.info("POST https://api.telegram.org/bot%s/getUpdates", TOKEN),
    )
    assert TOKEN not in text
    assert "https://api.telegram.org/bot***/getUpdates" in text


def test_line_has_time_level_and_component():
    log = logging.getLogger("trading.binance.master")
    text = render(RedactingFormatter(), log, lambda: log.info("synced"))
    assert " INFO    trading.binance.master: synced" in text
    assert text[:4].isdigit()
