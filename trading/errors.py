"""The few faults an exchange call can end in, and what the bot does for each.

Every exchange call (the ccxt connector or the paper exchange) returns a result or raises
exactly one of these. Vendor errors are translated at the boundary, in one place
(`trading/exchange.py` for ccxt); nothing else in the project looks at vendor exceptions.

    Fault                      base: carries venue, call and the vendor's message
    ├── Transient              timeouts, 5xx, "exchange not available"
    │                          -> reads retry with capped exponential backoff; a critical
    │                             call (the sync, the start-up markets) that keeps failing
    │                             with any fault but Fatal for longer than
    │                             SYNC_FAILURE_LIMIT_SECONDS is escalated to Fatal
    │                             (ccxt reports a retired endpoint's 404 as transient)
    ├── RateLimited            429/418, DDoSProtection, RateLimitExceeded
    │                          -> back off for `retry_after` when the exchange sent one,
    │                             else exponentially; the circuit breaker counts it
    ├── Rejected               invalid order, insufficient funds, bad symbol, order not found
    │                          -> this one request failed; nothing else changes
    │   ├── OrderNotFound      the order is unknown (already filled, cancelled or never placed)
    │   │                      -> a cancel of it is done; a lookup of it answers "gone"
    │   ├── DuplicateOrder     the client order id is taken: the order exists after all
    │   │                      -> look it up by client order id, never "not placed"
    │   └── ClockRejected      timestamp / nonce outside the window (Binance -1021)
    │                          -> resync the exchange clock once and retry once
    └── Fatal                  authentication, permission, account suspended, not supported,
                               and ANY error not positively known to be one of the above
                               -> the trader stops entries, raises an emergency, and
                                  (FAILSAFE_ON_FATAL=flatten) exits its positions

Unknown means fatal: a new vendor error must never be silently retried.
"""

from __future__ import annotations


class Fault(Exception):
    """An exchange call failed in a classified way."""

    kind = "fault"

    def __init__(self, message: str = "", *, venue: str = "", call: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.venue = venue
        self.call = call

    def __str__(self) -> str:
        where = " ".join(p for p in (self.venue, self.call) if p)
        return f"{where}: {self.message}" if where else self.message


class Transient(Fault):
    """Timeouts, 5xx, exchange not available: worth retrying a read."""

    kind = "transient"


class RateLimited(Fault):
    """The exchange asked us to slow down; `retry_after` seconds when it said so."""

    kind = "rate_limited"

    def __init__(
        self,
        message: str = "",
        *,
        venue: str = "",
        call: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, venue=venue, call=call)
        self.retry_after = retry_after


class Rejected(Fault):
    """This request was refused (bad order, funds, symbol, unknown order); nothing else."""

    kind = "rejected"


class OrderNotFound(Rejected):
    """The exchange does not know this order (any more)."""

    kind = "order_not_found"


class DuplicateOrder(Rejected):
    """The exchange already holds an order with this client order id: it was placed."""

    kind = "duplicate_order"


class ClockRejected(Rejected):
    """The request's timestamp or nonce was outside the exchange's window."""

    kind = "clock_rejected"


class Fatal(Fault):
    """Authentication, permissions, unsupported, or anything unknown: stop and alert."""

    kind = "fatal"


FAULT_CLASSES: tuple[type[Fault], ...] = (
    Transient,
    RateLimited,
    Rejected,
    OrderNotFound,
    DuplicateOrder,
    ClockRejected,
    Fatal,
)
