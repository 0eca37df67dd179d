"""JSON decoded a piece at a time, so another thread keeps its turn meanwhile.

A whole-market answer is megabytes of JSON (12,000 Binance tickers: 5 MB). One `json.loads`
(or orjson) of it is a single C call that holds the interpreter lock throughout, 30-50 ms, and
no other thread runs until it returns, however early Python asks it to switch. `loads` decodes
the same text into the same value, but a piece per call: the members of the outer objects, and
the elements of the first array met on the way down (Binance's list of tickers, Coinbase's
"products", OKX's "data", Kraken's "result" pairs), each one short C call of the standard
decoder. Between pieces Python switches threads as it does between any two statements.
"""

from __future__ import annotations

import json
import re
from typing import Any

_decoder = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
# How many object levels are opened member by member before the rest is decoded whole.
_OPEN_OBJECTS = 2


def loads(text: str) -> Any:
    """`json.loads(text)`, decoded in pieces; ValueError (json.JSONDecodeError) as it raises."""
    try:
        value, end = _value(text, _skip(text, 0), _OPEN_OBJECTS)
    except IndexError as e:  # the text ended inside a container
        raise json.JSONDecodeError("Unterminated JSON", text, len(text)) from e
    end = _skip(text, end)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()


def _value(text: str, at: int, objects: int) -> tuple[Any, int]:
    """The value that starts at `at` and where it ends: an object opened member by member
    while `objects` levels remain, an array element by element (its elements whole)."""
    opener = text[at]
    if opener == "{" and objects > 0:
        return _object(text, at, objects - 1)
    if opener == "[" and objects > 0:
        return _array(text, at)
    return _decoder.raw_decode(text, at)


def _object(text: str, at: int, objects: int) -> tuple[dict, int]:
    members: dict[str, Any] = {}
    at = _skip(text, at + 1)
    if text[at] == "}":
        return members, at + 1
    while True:
        if text[at] != '"':
            raise json.JSONDecodeError("Expecting a property name in quotes", text, at)
        key, at = _decoder.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
        members[key], at = _value(text, _skip(text, at + 1), objects)
        at, closed = _next(text, at, "}")
        if closed:
            return members, at


def _array(text: str, at: int) -> tuple[list, int]:
    elements: list[Any] = []
    at = _skip(text, at + 1)
    if text[at] == "]":
        return elements, at + 1
    while True:
        element, at = _decoder.raw_decode(text, at)
        elements.append(element)
        at, closed = _next(text, at, "]")
        if closed:
            return elements, at


def _next(text: str, at: int, closer: str) -> tuple[int, bool]:
    """Where the next member starts, or past the closer (and True)."""
    at = _skip(text, at)
    if text[at] == closer:
        return at + 1, True
    if text[at] != ",":
        raise json.JSONDecodeError(f"Expecting ',' delimiter or '{closer}'", text, at)
    return _skip(text, at + 1), False
