"""The push side of a ccxt venue: one account's websockets through ccxt.pro. With
trading/venues/ccxt_venue.py and trading/venues/ccxt_*.py, the only ccxt code.

A `VenueFeed` hands what the exchange pushes to an async callback as the dataclasses of
trading/models.py: an `Order` for every change of an order (placed, filled, triggered,
cancelled), the whole account's `Balance` after each change, and a `Ticker` for each of the
symbols it was given. ccxt.pro may fold several changes of one order that arrive together into
the latest: an `Order` is the order's state, not a delta. The REST sync stays the source of
truth; the feed only lets the bot hear sooner.

Its one task runs sessions: a fresh ccxt.pro client (trading/venues/ccxt_feed_client.py: on
the account's pace, its REST requests through the account's connector, with the venue's
markets) runs watch_orders, watch_balance and watch_tickers side by side. Whichever of them
fails ends the session (so does a REST request of its own that failed: ccxt would wait for its
answer forever): the client is closed and a new one connects after a capped exponential
backoff, so nothing of a dead connection (subscriptions, cached orders, a balance snapshot gone
stale) is carried over. A session the exchange refused for a limit (too many connections,
requests or subscriptions) waits the longest backoff, or the Retry-After it was sent. Without
credentials only the tickers are watched.

Tickers come by the exchange's stream of every market where it has one (binance's
`!ticker@arr`: one subscription, whatever the universe). Watched symbol by symbol, they are
capped at ccxt's limit of subscriptions per stream (binance 200, under the 1024 streams Binance
lets one connection listen to), said once in the log: the others' prices stay REST's.

A feed problem never reaches the caller as an exception, only as a state: `healthy` is True
while a socket of the session is open and something (an event, a subscription's answer, a pong)
arrived on it within `silence_limit`. ccxt pings twice per silence limit, so an account with
nothing happening stays healthy and a dead socket is noticed and replaced. The log says each
change of that state once: down (however many reconnections then fail), silent, back up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import ccxt.pro

from trading.models import Deliver, FeedItem, Through, Ticker, account_label
from trading.pacing import Pacer
from trading.retry import backoff_delay
from trading.venues import ccxt_feed_client as sessions
from trading.venues.ccxt_faults import describe
from trading.venues.ccxt_parse import to_balance, to_order, to_ticker

# A ccxt.pro watch method, and how its result becomes our items.
Watch = tuple[Callable[[], Awaitable[Any]], Callable[[Any], Iterable[FeedItem]]]

# The ticker stream to watch where ccxt's default carries no bid and ask (binance: miniTicker).
_TICKER_STREAM = {"binance": "ticker", "binanceus": "ticker"}
# Symbols watched one by one where ccxt states no limit of subscriptions per stream.
_SUBSCRIPTIONS_WITHOUT_A_LIMIT = 100

log = logging.getLogger(__name__)


class VenueFeed:
    """One exchange account's websocket feed. `start()` it; `close()` it at shutdown."""

    def __init__(
        self,
        exchange_id: str,
        account: str,
        deliver: Deliver,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        sandbox: bool = False,
        recv_window_ms: int = 10_000,
        config: dict | None = None,
        symbols: Sequence[str] = (),
        all_tickers: bool = False,
        silence_limit: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        pacer: Pacer | None = None,
        source: Any = None,
    ) -> None:
        """`pacer`: the account's pace, shared with its venue; `source`: the venue's ccxt
        client, whose markets and clock offset each session takes instead of asking."""
        self.name = exchange_id
        self.label = account_label(exchange_id, account)
        self.public_only = not (api_key or secret)
        self.symbols = self._capped(tuple(symbols), config or {})
        # Every market's ticker (binance's !ticker@arr): the scan reads them instead of REST.
        self.pushes_tickers = all_tickers
        self.silence_limit = silence_limit
        self.last_event_at: float | None = None  # epoch seconds of the last event received
        self._deliver = deliver
        self._credentials = {"apiKey": api_key, "secret": secret, "password": password}
        self._secrets = tuple(s for s in (api_key, secret, password) if s)
        self._sandbox = sandbox
        self._recv_window_ms = recv_window_ms
        settings = _feed_settings(exchange_id, silence_limit)
        self._config = ccxt.Exchange.deep_extend(config or {}, settings)
        self._backoff = (backoff_base, backoff_cap)
        self._pacer = pacer
        self._source = source
        self._through: Through | None = None
        self.reconnects = 0  # sessions that failed and were opened again
        self.subscriptions = 0  # subscription messages sent
        self.requests = 0  # REST requests of the sessions' own (balance snapshots)
        self._client: Any = None  # the session's ccxt.pro client
        self._rest_failure: BaseException | None = None  # the session's, ending it
        self._asked_wait = 0.0  # seconds ccxt would still wait before dialling again
        self._session_start = 0.0
        self._reported: bool | None = None  # the health the log last stated
        self._inbox: asyncio.Queue[FeedItem] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"VenueFeed({self.label})"

    @property
    def healthy(self) -> bool:
        heard = self._last_heard()
        return heard is not None and time.time() - heard <= self.silence_limit

    def route_requests(self, through: Through) -> None:
        """Make the sessions' REST requests through `through` (the account's connector)."""
        self._through = through

    def start(self) -> None:
        wanted = self.symbols or self.pushes_tickers or not self.public_only
        if self._task is None and wanted:
            self._task = asyncio.create_task(self._run(), name=f"feed {self.label}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    # --- sessions --------------------------------------------------------------------------

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._hand_over())
            group.create_task(self._stay_connected())

    async def _stay_connected(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except Exception as e:
                failures = 1 if self._reported else failures + 1
                self.reconnects += 1
                if sessions.refused_for_a_limit(e):
                    failures = max(failures, 64)  # the longest backoff at once
                    message = f"websocket feed refused for a limit ({self._reason(e)})"
                else:
                    message = f"websocket feed down ({self._reason(e)})"
                self._report(False, f"{message}; REST polling meanwhile, reconnecting")
            base, cap = self._backoff
            # A Retry-After the exchange sent with a refused upgrade outlasts our backoff.
            await asyncio.sleep(max(self._asked_wait, backoff_delay(failures, base=base, cap=cap)))

    async def _session(self) -> None:
        client = sessions.session_client(
            self.name,
            self._credentials,
            recv_window_ms=self._recv_window_ms,
            config=self._config,
            sandbox=self._sandbox,
            pacer=self._pacer,
            source=self._source,
        )
        sessions.route_requests(
            client, self._counted, label=self.label, secrets=self._secrets, failed=self._failed
        )
        sessions.count_subscriptions(client, self._pacer, self._subscribed)
        heard = asyncio.Event()
        sessions.on_message(client, heard.set)
        self._client, self._session_start = client, time.time()
        self._rest_failure = None
        try:
            await client.load_markets()
            first, *others = self._watches(client)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch(*first))
                group.create_task(self._once_heard(heard, others, group))
                group.create_task(self._monitor())
        finally:
            self._client = None
            self._asked_wait = sessions.dial_delay(client)
            await sessions.close(client)

    async def _once_heard(
        self, heard: asyncio.Event, watches: list[Watch], group: asyncio.TaskGroup
    ) -> None:
        """Start the other watches once the first one's socket has answered: a watch_balance
        asks for its REST snapshot before any socket is up, so a server that speaks no
        websocket would be asked for one at every attempt."""
        await heard.wait()
        for watch in watches:
            group.create_task(self._watch(*watch))

    async def _counted(self, call: str, request: Callable[[], Awaitable[Any]]) -> Any:
        self.requests += 1
        return await (self._through(call, request) if self._through else request())

    def _failed(self, error: BaseException) -> None:
        self._rest_failure = self._rest_failure or error

    def _subscribed(self) -> None:
        self.subscriptions += 1

    def _watches(self, client: Any) -> list[Watch]:
        watches: list[Watch] = []
        if not self.public_only:
            watches.append((client.watch_orders, lambda raw: [to_order(o) for o in raw]))
            watches.append((client.watch_balance, lambda raw: [to_balance(raw)]))
        if self.pushes_tickers:
            watches.append((client.watch_tickers, _tickers))
        elif self.symbols:
            symbols = list(self.symbols)
            watches.append((lambda: client.watch_tickers(symbols), _tickers))
        return watches

    async def _watch(
        self, watch: Callable[[], Awaitable[Any]], translate: Callable[[Any], Iterable[FeedItem]]
    ) -> None:
        # Nothing is awaited between two watches: ccxt resolves a watch only with what arrives
        # after it was made, so a pause here would leave events waiting for the next one.
        while True:
            raw = await watch()
            self.last_event_at = time.time()
            for item in translate(raw):
                self._inbox.put_nowait(item)

    async def _monitor(self) -> None:
        """Say in the log when the session comes up or falls silent."""
        while True:
            await asyncio.sleep(min(self.silence_limit / 4, 1.0))
            if self._rest_failure is not None:
                raise self._rest_failure
            heard = max(self._last_heard() or 0.0, self._session_start)
            if time.time() - heard > self.silence_limit:
                self._report(False, f"websocket feed silent for {self.silence_limit:g} s")
            elif self.healthy:
                self._report(True, "websocket feed up")

    async def _hand_over(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                await self._deliver(item)
            except Exception:
                log.exception("%s: the feed's receiver failed on %r", self.label, item)

    # --- state -----------------------------------------------------------------------------

    def _last_heard(self) -> float | None:
        """When the newest frame arrived on an open socket of the session (ccxt stamps each
        frame, pings and pongs included, in epoch milliseconds)."""
        if self._client is None:
            return None
        stamps = [
            c.last_message_at
            for c in list(self._client.clients.values())
            if not c.closed() and getattr(c, "last_message_at", None)
        ]
        return max(stamps) / 1000 if stamps else None

    def _report(self, healthy: bool, message: str) -> None:
        if healthy == self._reported:
            return
        self._reported = healthy
        log.log(logging.INFO if healthy else logging.WARNING, "%s: %s", self.label, message)

    def _reason(self, error: BaseException) -> str:
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        return describe(error, self._secrets)

    def _capped(self, symbols: tuple[str, ...], config: dict) -> tuple[str, ...]:
        """At most ccxt's limit of subscriptions per stream: past it ccxt.pro refuses (and
        binance closes a connection past 1024 streams), and every new session would be refused
        again."""
        options = getattr(ccxt.pro, self.name)({"options": config.get("options") or {}}).options
        limits = options.get("subscriptionLimitByStream") or {}
        limit = int(limits.get("spot") or _SUBSCRIPTIONS_WITHOUT_A_LIMIT)
        if len(symbols) > limit:
            log.warning(
                "%s: the tickers of %d of %d symbols watched (the exchange's limit of "
                "subscriptions per stream); the others' prices by REST",
                self.label,
                limit,
                len(symbols),
            )
        return symbols[:limit]


def open_venue_feed(
    exchange_id: str, account: str, deliver: Deliver, **settings: Any
) -> VenueFeed | None:
    """The feed of an account where ccxt.pro watches its orders and balance, or None (REST
    only). Every market's ticker is watched where the exchange streams them all at once."""
    if exchange_id not in ccxt.pro.exchanges:
        return None
    has = getattr(ccxt.pro, exchange_id)().has  # never opened: no session to close
    if not (has.get("watchOrders") and has.get("watchBalance")):
        return None
    all_tickers = exchange_id in _TICKER_STREAM and bool(has.get("watchTickers"))
    return VenueFeed(exchange_id, account, deliver, all_tickers=all_tickers, **settings)


def _feed_settings(exchange_id: str, silence_limit: float) -> dict:
    """ccxt settings of the feed's client: ping twice per silence limit (two unanswered pings
    fail the socket), start the balance from a REST snapshot so each update is the whole
    account, and the ticker stream with bid and ask."""
    options: dict[str, Any] = {"watchBalance": {"fetchBalanceSnapshot": True}}
    if exchange_id in _TICKER_STREAM:
        options["watchTickers"] = {"name": _TICKER_STREAM[exchange_id]}
    keep_alive = int(silence_limit * 1000 / 2)
    return {"streaming": {"keepAlive": keep_alive, "maxPingPongMisses": 2}, "options": options}


def _tickers(raw: dict) -> list[Ticker]:
    return [t for t in map(to_ticker, raw.values()) if t is not None]
