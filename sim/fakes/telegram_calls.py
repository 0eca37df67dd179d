"""The requests python-telegram-bot makes of the fake Bot API (sim/fakes/telegram_api.py), as
recorded, and the shapes of what the fake hands back about users."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Values PTB sends as plain strings; every other form field is JSON-encoded by PTB.
TEXT_FIELDS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "data",
        "url",
        "inline_message_id",
        "description",
        "short_description",
        "language_code",
        "business_connection_id",
        "message_effect_id",
        "action",
        "emoji",
        "question",
        "title",
    }
)


@dataclass
class ApiCall:
    """One request the bot made: method name, decoded parameters, uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = 0.0  # event-loop time when it arrived
    ok: bool = True  # False when a scripted failure answered it

    @property
    def text(self) -> str:
        return str(self.params.get("text", self.params.get("caption", "")))

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


def decode_form(form: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in form.items():
        if name in TEXT_FIELDS:
            out[name] = value
            continue
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value  # e.g. chat_id="@channelname"
    return out


def user_of(user_id: int, first_name: str, username: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    return user


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    if request.content_type == "application/json":
        body = await request.json()
        return (body if isinstance(body, dict) else {}), {}
    form = await request.post() if request.can_read_body else {}
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for name, value in form.items():
        if isinstance(value, str):
            fields[name] = value
        else:
            files[name] = value.file.read()
    params = decode_form(fields)
    params.update({k: v for k, v in request.query.items() if k not in params})
    return params, files
