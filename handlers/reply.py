"""What a handler returns: text (Telegram's HTML subset, every dynamic value escaped) and
optional buttons; transports decide how to show them."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str  # what the transport hands back to Dispatcher.press()


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    photo: bytes | None = None
    ok: bool = True  # False: refused or bad input (nothing changed)


def esc(value: object) -> str:
    """Escape anything dynamic before it goes into a reply."""
    return html.escape(str(value), quote=False)


def refuse(text: str) -> Reply:
    return Reply(text=text, ok=False)


def plain(text: str) -> str:
    """HTML reply text as plain text, for the console."""
    return html.unescape(re.sub(r"</?(b|i|u|s|code|pre|a)(\s[^>]*)?>", "", text))
