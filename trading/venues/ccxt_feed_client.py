"""The ccxt.pro client of one feed session (trading/venues/feed.py), made to spend the account's
requests as the bot's other requests do.

A session's client is fresh (nothing of a dead connection is carried over), but what it asks of
the exchange is the account's: its REST requests (a balance snapshot; the markets only where
the venue has not loaded them, whose markets and clock offset it otherwise takes) keep the
venue's pace (one `Pacer`, exits first) and go through the account's connector (`Through`:
counted, scored, never past an open circuit); a subscription message waits its turn at the same
pace at ccxt's own cost for it (binance: 5, a quarter of a second of the account's pace) and is
counted. ccxt.pro alone paces a session's subscriptions on a limiter of each socket's own, and
its REST requests on one of the client's own: neither knew of the venue's requests, nor the
venue of theirs.

What ccxt.pro leaves behind is taken care of here too: the futures nobody awaits, and a close
interrupted by a cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro
from ccxt.base import errors as ce

from trading.models import Through
from trading.pacing import Pacer
from trading.venues.ccxt_exchanges import build
from trading.venues.ccxt_faults import answering, classify

# How a refusal for a limit reads in what ccxt raises: a 429 or 418 answer to the upgrade
# (aiohttp's "429, message='Invalid response status'"), ccxt's own subscription limit.
_LIMIT_WORDS = ("429,", "418,", "limit of subscriptions", "too many")


def session_client(
    exchange_id: str,
    credentials: dict,
    *,
    recv_window_ms: int,
    config: dict,
    sandbox: bool,
    pacer: Pacer | None,
    source: Any,
) -> Any:
    """A fresh ccxt.pro client on the account's pace, with the venue client's (`source`)
    markets and clock offset when it has them."""
    client = build(exchange_id, credentials, recv_window_ms, config, ccxt.pro, pacer=pacer)
    if sandbox:
        client.set_sandbox_mode(True)
    if source is not None and source.markets:
        client.set_markets_from_exchange(source)
        offset = source.options.get("timeDifference")
        if offset is not None:
            client.options["timeDifference"] = offset
    _retrieve_rejections(client)
    return client


def route_requests(
    client: Any,
    through: Through | None,
    *,
    label: str,
    secrets: tuple[str, ...],
    failed: Callable[[BaseException], None],
) -> None:
    """Every REST request of `client` through the account's connector, its failure translated
    into a fault there, and told to `failed` (the session waits on nothing that failed)."""
    fetch2 = client.fetch2

    async def routed(
        path: str, api: Any = ("public",), method: str = "GET", params: Any = None,
        config: Any = None,
    ) -> Any:  # fmt: skip
        params, config = params if params is not None else {}, config or {}

        async def request() -> Any:
            with answering() as answer:
                try:
                    return await fetch2(path, api, method, params, config)
                except Exception as e:
                    raise classify(
                        e, label, f"feed {path}", dialect=client.id, answer=answer, secrets=secrets
                    ) from e

        try:
            return await (through(f"feed {path}", request) if through else request())
        except Exception as e:
            failed(e)
            raise

    client.fetch2 = routed


def count_subscriptions(client: Any, pacer: Pacer | None, counted: Callable[[], None]) -> None:
    """Each subscription message a socket of `client` sends waits for the account's pace at
    ccxt's cost for it, and is counted."""
    open_socket = client.client

    def socket(url: str) -> Any:
        ws = open_socket(url)
        if not getattr(ws.throttle, "ours", False):  # ccxt reuses a url's socket
            ws.throttle = _subscription_throttle(pacer, counted)
        return ws

    client.client = socket


def _subscription_throttle(
    pacer: Pacer | None, counted: Callable[[], None]
) -> Callable[[float], Awaitable[None]]:
    async def throttle(cost: float = 1.0) -> None:
        counted()
        if pacer is not None:
            await pacer.turn(float(cost))

    throttle.ours = True  # type: ignore[attr-defined]
    return throttle


def on_message(client: Any, heard: Callable[[], None]) -> None:
    """Call `heard` at every message a socket of `client` receives (an answer, an event)."""
    handle = client.handle_message

    def handle_message(ws: Any, message: Any) -> Any:
        heard()
        return handle(ws, message)

    client.handle_message = handle_message


def refused_for_a_limit(error: BaseException) -> bool:
    """Whether the exchange (or ccxt on its behalf) refused the session for a limit: too many
    connections, requests or subscriptions."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, ce.RateLimitExceeded | ce.DDoSProtection):
        return True
    cause = error.__cause__
    if cause is not None and refused_for_a_limit(cause):
        return True
    text = str(error).lower()
    return any(word in text for word in _LIMIT_WORDS)


def dial_delay(client: Any) -> float:
    """Seconds ccxt itself would still wait before dialling again (a Retry-After the exchange
    sent with a refused upgrade): a fresh client would not know."""
    states = (getattr(client, "ws_dial_backoff", None) or {}).values()
    until = max((s.get("until", 0) for s in states), default=0)
    return max(0.0, (until - client.milliseconds()) / 1000)


async def close(client: Any) -> None:
    """Close the client to the end even if cancelled meanwhile (a shutdown while reconnecting):
    an interrupted close leaves its HTTP session open. A failure to close is no news: the
    session is over either way."""
    closing = asyncio.ensure_future(client.close())
    closing.add_done_callback(_retrieve)
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await asyncio.wait([closing])
        raise
    except Exception:
        pass


def _retrieve_rejections(exchange: Any) -> None:
    """Mark the futures ccxt.pro makes for the client's sockets and background tasks as having
    their exception retrieved (whoever awaits one still gets it). Some nobody awaits: binance's
    user-data subscription when the connection fails before it is answered, a balance snapshot
    still loading when the session ends. asyncio would log each as an error, at every
    reconnection."""
    open_socket, spawn = exchange.client, exchange.spawn

    def socket(url: str) -> Any:
        ws = open_socket(url)
        if "future" not in vars(ws):  # not wrapped yet: ccxt reuses a url's socket
            make_future = ws.future
            ws.future = lambda message_hash: _retrieved(make_future(message_hash))
        return ws

    exchange.client = socket
    exchange.spawn = lambda method, *args: _retrieved(spawn(method, *args))


def _retrieved(future: asyncio.Future) -> asyncio.Future:
    future.add_done_callback(_retrieve)
    return future


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
