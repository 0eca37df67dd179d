"""What the connector sends that changes the exchange's book: orders, sent once and never again,
and cancels, which tell an order already gone from a refusal.

An order is never sent twice: an exchange may still execute a request after a lookup missed it
(Binance -1007 "execution status unknown"), and refuses a reused client order id only while that
order is open, so a second send could fill a market order twice. After an unknown outcome (no
answer, an unrecognized answer, "duplicate client order id") the order is looked up once by its
client order id; if it is not there, the original fault is raised and
reconciliation settles the order later, once the request is too old for the exchange to still
accept it (`last_sent`). Orders and cancels bypass an open circuit so exits still go out.

A rate limit is not an unknown outcome: exchanges answer it before they process the request
(Binance's 429/418 and its order-count -1015, Kraken's EAPI/EOrder "Rate limit exceeded"), so
the order was not placed, as after a refusal.

Apart from trading/connector.py because this is the one place that remembers which requests may
still reach the exchange (the ids in doubt), and the only one whose failures must never be
retried blindly; the connector's reads are retried freely.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from trading.clock import Clock
from trading.errors import (
    ClockRejected,
    DuplicateOrder,
    Fault,
    OrderNotFound,
    RateLimited,
    Recoverable,
    Rejected,
    Transient,
    Unrecognized,
)
from trading.models import Order, OrderRequest, Venue
from trading.venue_calls import VenueCalls


@dataclass(frozen=True)
class Cancelled:
    """What a cancel did: nothing (`gone`: the order had finished already), or cancelled it."""

    gone: bool
    order: Order | None = None  # its final state, when the exchange's answer said it

    def __bool__(self) -> bool:
        return not self.gone


class OutcomeUnknown(Transient):
    """The exchange refused an order as a duplicate of its client order id, so an order under
    that id exists, yet a lookup did not find it: placed or not is unknown, as after a timeout."""


def _any_rejection(fault: Rejected) -> bool:
    return True


def _not_found(fault: Rejected) -> bool:
    return isinstance(fault, OrderNotFound)


class OrderSender:
    """Orders and cancels of one venue, and the client order ids whose fate is in doubt."""

    def __init__(
        self, venue: Venue, calls: VenueCalls, *, clock: Clock, log: logging.Logger
    ) -> None:
        self._venue = venue
        self._calls = calls
        self._clock = clock
        self._log = log
        # Client order ids whose create may still reach the exchange's book: None while the
        # request is in flight, else the monotonic time its outcome became unknown.
        self._in_doubt: dict[str, float | None] = {}

    async def place(self, request: OrderRequest) -> Order:
        """Send an order once. The exchange's order, or: Rejected or RateLimited (it was not
        placed), Fatal, or Transient / Unrecognized when the outcome is unknown (see above)."""
        cid = request.client_order_id
        create = functools.partial(self._venue.create_order, request)
        self._in_doubt[cid] = None  # in flight
        try:
            order = await self._calls.call("create_order", create, signed=True, gated=False)
        except RateLimited:
            self._in_doubt.pop(cid, None)  # turned away before it was processed: never placed
            raise
        except Rejected as fault:
            if not isinstance(fault, DuplicateOrder):
                self._in_doubt.pop(cid, None)  # refused outright: never placed
                raise
            # The id is taken, so the order exists; if the lookup cannot see it (yet), its
            # outcome is as unknown as after a timeout, never "not placed".
            doubt: Fault = OutcomeUnknown(
                f"{fault.message} (a duplicate: looked up by its client order id)",
                venue=fault.venue,
                call="create_order",
            )
            doubt.__cause__ = fault
        except (Transient, Unrecognized) as fault:
            doubt = fault
        except BaseException:
            self._in_doubt[cid] = self._clock.monotonic()  # a Fatal or a bug: who knows
            raise
        else:
            self._in_doubt.pop(cid, None)
            return order
        self._in_doubt[cid] = self._clock.monotonic()
        self._log.warning(
            "create %s %s: outcome unknown (%s); looking it up, never sending it again",
            cid,
            request.symbol,
            doubt.kind,
        )
        existing = await self._find_placed(request, doubt)
        if existing is not None:
            self._in_doubt.pop(cid, None)
            return existing
        raise doubt

    def last_sent(self, client_order_id: str) -> float:
        """The latest monotonic time a request for this client order id may have left: now
        while one is in flight, else when its outcome became unknown. For an id this connector
        did not send (a placeholder from before a restart), the first time it is asked about:
        later than the real send, so a window counted from it is never too short."""
        now = self._clock.monotonic()
        since = self._in_doubt.setdefault(client_order_id, now)
        return now if since is None else since

    def settled(self, client_order_id: str) -> None:
        """Reconciliation has settled this order's fate: forget its doubt."""
        self._in_doubt.pop(client_order_id, None)

    async def cancel(self, order_id: str, symbol: str) -> Cancelled:
        """Cancel an order. Falsy when it was already gone (filled, cancelled, unknown); its
        final state when the exchange's answer said it (no lookup needed then)."""
        cancel = functools.partial(self._venue.cancel_order, order_id, symbol)
        try:
            final = await self._calls.call(
                "cancel_order", cancel, signed=True, gated=False, quiet=_not_found
            )
        except ClockRejected:
            raise
        except Rejected as fault:
            if isinstance(fault, OrderNotFound) or await self._is_gone(order_id, symbol):
                self._log.info("cancel %s %s: already gone", order_id, symbol)
                return Cancelled(gone=True)
            raise
        return Cancelled(gone=False, order=final if isinstance(final, Order) else None)

    async def _find_placed(self, request: OrderRequest, original: Fault) -> Order | None:
        """The order the exchange holds for this client id; on any doubt, the original fault."""
        find = functools.partial(self._venue.find_order, request.client_order_id, request.symbol)
        try:
            found = await self._calls.read("find_order", find, signed=True, gated=False)
        except Recoverable as check_fault:
            self._log.warning("check of %s failed (%s)", request.client_order_id, check_fault.kind)
            raise original from check_fault
        if found is not None:
            self._log.info("order %s was accepted after all", request.client_order_id)
        return found

    async def _is_gone(self, order_id: str, symbol: str) -> bool:
        fetch = functools.partial(self._venue.fetch_order, order_id, symbol)
        try:
            order = await self._calls.read("fetch_order", fetch, signed=True, quiet=_any_rejection)
        except Rejected:
            return True  # the exchange does not know it
        except Recoverable:
            return False  # cannot tell: the original rejection stands
        return not order.is_open
