""".env.example lists every variable the bot reads, and nothing it does not."""

from __future__ import annotations

import re
from pathlib import Path

from chatbot.config import known_names
from chatbot.config_reader import unknown_variables
from trading.venues.ccxt_exchanges import known_exchange_ids

ROOT = Path(__file__).resolve().parent.parent
# Variables the code reads by name (credentials are families, documented by example).
READ = re.compile(
    r"""r\.(?:raw|bool|number|int|choice|secret|parse)\(\s*f?["']([A-Z][A-Z0-9_]+)["']"""
)


def documented() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=", line)
        if m:
            names.add(m[1])
    return names


def read_by_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "chatbot").glob("*.py"):
        names |= set(READ.findall(path.read_text()))
    return names


def test_every_variable_read_is_documented():
    assert read_by_code() - documented() == set()


def test_every_documented_variable_is_read():
    families = re.compile(r"^[A-Z]+_(MASTER|USER_\w+)_API_(KEY|SECRET|PASSWORD)$|_SANDBOX$")
    extra = {n for n in documented() - read_by_code() if not families.search(n)}
    assert extra == set()


def test_no_documented_variable_is_warned_about_as_unknown():
    exchanges = ("binance", "kraken", "okx")
    assert unknown_variables(documented(), known_names(), known_exchange_ids(), exchanges) == []


def test_the_known_names_are_every_variable_the_code_reads():
    assert read_by_code() <= known_names()
