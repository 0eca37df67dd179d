"""The few faults an exchange call can end in, and what the bot does for each.

Every exchange call (the ccxt connector or the paper exchange) returns a result or raises
exactly one of these. Vendor errors are translated at the boundary, in one place
(`trading/venues/ccxt_faults.py` for ccxt), by what the answer means; nothing else in the project
looks at vendor exceptions or their text.

    Fault                      base: carries venue, call and the vendor's message
    ├── Recoverable            no single one of these may ever flatten the account:
    │   │                      `except Recoverable` skips this part of the cycle
    │   ├── Transient          timeouts, 5xx, "exchange not available", maintenance, the
    │   │                      exchanges' documented "try again" answers (Binance -1008)
    │   │                      -> reads retry with capped exponential backoff; an order whose
    │   │                         answer was one of these is looked up by its client order id,
    │   │                         never sent again
    │   ├── RateLimited        429/418, DDoSProtection, RateLimitExceeded
    │   │                      -> back off for `retry_after` when the exchange sent one,
    │   │                         else exponentially; the circuit breaker counts it; an
    │   │                         order answered so was turned away unprocessed: not placed
    │   ├── Rejected           invalid order, insufficient funds, bad symbol, order not found
    │   │   │                  -> this one request failed; nothing else changes
    │   │   ├── OrderNotFound  the order is unknown (already filled, cancelled or never placed)
    │   │   │                  -> a cancel of it is done; a lookup of it answers "gone"
    │   │   ├── DuplicateOrder the client order id is taken: the order exists after all
    │   │   │                  -> look it up by client order id, never "not placed"
    │   │   ├── InsufficientFunds  the account lacks what the order needs
    │   │   │                  -> a stop put back beside a sell of unknown outcome: that sell
    │   │   │                     holds or took the coins; it waits for the reconciliation
    │   │   └── ClockRejected  timestamp / nonce outside the window (Binance -1021)
    │   │                      -> resync the exchange clock once and retry once
    │   └── Unrecognized       an answer nobody recognises (an unknown code, a bare ccxt
    │                          ExchangeError, a parse error): never retried blindly; an order
    │                          answered so is looked up like after a timeout; the connector
    │                          keeps a streak per call, and one that lasts longer than
    │                          SYNC_FAILURE_LIMIT_SECONDS becomes Fatal
    └── Fatal                  authentication, permission, account suspended, not supported,
                               and any failure that persisted past its limit (a sync failing
                               for SYNC_FAILURE_LIMIT_SECONDS with any Recoverable fault, a
                               call answering Unrecognized for as long)
                               -> the trader stops entries, raises an emergency, and
                                  (FAILSAFE_ON_FATAL=flatten) exits its positions

    Closed                     not a Fault: the venue's client was closed by us (shutdown).
                               An asyncio.CancelledError, so the call ends like a cancelled
                               one: no retry, no health fault, no failsafe, no emergency.

Unknown is never fatal at once, and never retried blindly: only persistence makes it fatal.
"""

from __future__ import annotations

import asyncio


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


class Recoverable(Fault):
    """A fault no single occurrence of which may flatten the account."""

    kind = "recoverable"


class Transient(Recoverable):
    """Timeouts, 5xx, exchange not available, "try again": worth retrying a read."""

    kind = "transient"


class RateLimited(Recoverable):
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


class Rejected(Recoverable):
    """This request was refused (bad order, funds, symbol, unknown order); nothing else."""

    kind = "rejected"


class OrderNotFound(Rejected):
    """The exchange does not know this order (any more)."""

    kind = "order_not_found"


class DuplicateOrder(Rejected):
    """The exchange already holds an order with this client order id: it was placed."""

    kind = "duplicate_order"


class InsufficientFunds(Rejected):
    """The account does not hold what the order needs (free balance, or coins other orders
    hold)."""

    kind = "insufficient_funds"


class ClockRejected(Rejected):
    """The request's timestamp or nonce was outside the exchange's window."""

    kind = "clock_rejected"


class Unrecognized(Recoverable):
    """An answer nobody recognises: not retried, fatal only when it persists."""

    kind = "unrecognized"


class Fatal(Fault):
    """Authentication, permissions, unsupported, or a failure that persisted: stop and alert.
    `halt`: persisted only because the exchange kept rate-limiting us, so the trader halts
    (positions left to their stops) rather than flatten through the same throttled pipe."""

    kind = "fatal"
    halt = False


class Closed(asyncio.CancelledError):
    """The venue's client was closed by us: the call is cancelled by the shutdown, not failed."""

    def __init__(self, message: str = "", *, venue: str = "", call: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.venue = venue
        self.call = call
