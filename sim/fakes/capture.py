"""A loopback stand-in for any ccxt exchange: it records every request and answers from a table.

It checks no signature and keeps no state: it is for tests of what ccxt's real exchange
classes *send* (the order shapes of Coinbase, Gate, HTX, OKX, Kraken...), which the Binance
fake cannot show. `ccxt_config(exchange_id)` points every API URL of that exchange here and
hands ccxt its markets, so no market endpoint is ever called.

    async with CaptureServer() as server:
        server.answer("/api/v3/brokerage/orders", {"success": True, ...})
        venue = CcxtVenue("coinbase", "MAIN", api_key="key", secret="c2VjcmV0",
                          config=server.ccxt_config("coinbase"))
        ...
        [sent] = server.sent("/api/v3/brokerage/orders")   # the body ccxt built, as a dict
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import ccxt.async_support as ccxt
from aiohttp import web

from sim.fakes.http import LoopbackServer


@dataclass(frozen=True)
class Sent:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # JSON as parsed, a form as a dict, else the text


class CaptureServer(LoopbackServer):
    """Records every request; answers `answer(path, json)` or, by default, `{}`."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Sent] = []
        self._answers: dict[str, tuple[int, Any]] = {}
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    def answer(self, path: str, body: Any, *, status: int = 200) -> None:
        self._answers[path] = (status, body)

    def sent(self, path: str, method: str | None = None) -> list[Any]:
        """The bodies sent to `path` (and the query where there is no body), in order."""
        return [
            r.body if r.body not in (None, "") else r.query
            for r in self.requests
            if r.path == path and method in (None, r.method)
        ]

    def ccxt_config(self, exchange_id: str, markets: list[dict] | None = None) -> dict:
        """Every URL of the exchange's API on this server; the markets given to ccxt up front."""
        urls = _retarget(_api_urls(exchange_id), self.url)
        markets = markets or [spot_market(exchange_id, "ETH", "USDT")]
        return {"urls": {"api": urls}, "markets": {m["symbol"]: m for m in markets}}

    async def _handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        self.requests.append(
            Sent(request.method, request.path, dict(request.query), _parse_body(text))
        )
        self.changed()
        status, body = self._answers.get(request.path, (200, {}))
        return web.json_response(body, status=status)


def spot_market(exchange_id: str, base: str, quote: str) -> dict:
    """A spot market in ccxt's unified shape, with the exchange's own id for it."""
    ids = {
        "coinbase": f"{base}-{quote}",
        "okx": f"{base}-{quote}",
        "gate": f"{base}_{quote}",
        "htx": f"{base}{quote}".lower(),
    }
    return {
        "id": ids.get(exchange_id, base + quote),
        "symbol": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "active": True,
        "precision": {"amount": 0.0001, "price": 0.01},
        "limits": {"amount": {}, "cost": {}},
        "info": {},
    }


@functools.cache
def _api_urls(exchange_id: str) -> dict:
    return getattr(ccxt, exchange_id)().urls["api"]


def _retarget(node: Any, root: str) -> Any:
    if isinstance(node, str):
        return re.sub(r"^https?://[^/]+", root, node)
    if isinstance(node, dict):
        return {k: _retarget(v, root) for k, v in node.items()}
    return node


def _parse_body(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    form = dict(parse_qsl(text, keep_blank_values=True))
    return form or text
