"""What a ccxt exception means: the one place vendor errors and their text are read.

`CcxtVenue` (trading/venues/ccxt_venue.py) sends every exception of a call through `classify`, which
turns it into a fault of `trading/errors.py` by meaning, in this order:

1. the exchange's own error code, found in the JSON body ccxt quotes in its message, looked up
   in that exchange's table (`DIALECTS`): ccxt raises a bare ExchangeError or OperationFailed
   for several documented "try again" answers (Binance -1008 "server overloaded"), and its
   class for a code can differ between the exchange's API sections;
2. ccxt's class, in `FAULTS`, which holds every class of ccxt's exception tree; the most
   specific class of the exception's MRO wins:

    BaseError                              Unrecognized
    ├── ExchangeError                      Unrecognized (also: an exchange code ccxt does not know)
    │   ├── AuthenticationError ...        Fatal (PermissionDenied, AccountNotEnabled, -Suspended)
    │   ├── BadRequest, BadSymbol          Rejected
    │   ├── OperationRejected, NoChange,   Rejected
    │   │   MarketClosed ...               (ManualInteractionNeeded, RestrictedLocation: Fatal)
    │   ├── InsufficientFunds              InsufficientFunds (a Rejected)
    │   ├── InvalidOrder and children      Rejected (OrderNotFound, DuplicateOrderId, ...)
    │   ├── NotSupported, ArgumentsRequired, InvalidAddress, proxy settings: Fatal
    │   └── ExchangeClosedByUser           Closed (we closed the client: a shutdown, no fault)
    ├── OperationFailed                    Unrecognized
    │   ├── NetworkError                   Transient (connection refused, reset)
    │   │   ├── DDoSProtection             RateLimited (Binance 418/429), with Retry-After
    │   │   ├── RateLimitExceeded          RateLimited (a sibling of DDoSProtection)
    │   │   ├── ExchangeNotAvailable       Transient (HTTP 400/403/404/410/5xx, maintenance)
    │   │   ├── InvalidNonce               ClockRejected (Binance -1021)
    │   │   └── RequestTimeout             Transient
    │   ├── BadResponse, NullResponse      Transient (a garbled answer; the read is repeated)
    │   └── CancelPending                  Transient
    └── UnsubscribeError                   Unrecognized (websockets: never used here)

   and anything that is not a ccxt exception (a parse error of an odd answer) is Unrecognized;
3. an Unrecognized answer that came with an HTTP 5xx status is Transient: the trouble is on the
   exchange's side;
4. a plain Rejected is narrowed by its wording where ccxt has no class for it: on a create, "that
   client order id is taken" is DuplicateOrder; on a cancel, "that order does not exist" is
   OrderNotFound.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ccxt.base import errors as ce

from trading.errors import (
    ClockRejected,
    Closed,
    DuplicateOrder,
    Fatal,
    Fault,
    InsufficientFunds,
    OrderNotFound,
    RateLimited,
    Rejected,
    Transient,
    Unrecognized,
)

FAULTS: dict[type[BaseException], type[Fault] | type[Closed]] = {
    ce.BaseError: Unrecognized,
    ce.ExchangeError: Unrecognized,
    ce.AuthenticationError: Fatal,
    ce.PermissionDenied: Fatal,
    ce.AccountNotEnabled: Fatal,
    ce.AccountSuspended: Fatal,
    ce.ArgumentsRequired: Fatal,  # our call is malformed: a bug, not a market condition
    ce.BadRequest: Rejected,
    ce.BadSymbol: Rejected,
    ce.OperationRejected: Rejected,
    ce.NoChange: Rejected,
    ce.MarginModeAlreadySet: Rejected,
    ce.MarketClosed: Rejected,
    ce.ManualInteractionNeeded: Fatal,  # a human must act on the account first
    ce.RestrictedLocation: Fatal,  # geo-blocked: nothing else will work either
    ce.InsufficientFunds: InsufficientFunds,
    ce.InvalidAddress: Fatal,  # withdrawals only: the bot never withdraws
    ce.AddressPending: Fatal,
    ce.InvalidOrder: Rejected,
    ce.OrderNotFound: OrderNotFound,
    ce.OrderNotCached: Rejected,
    ce.OrderImmediatelyFillable: Rejected,
    ce.OrderNotFillable: Rejected,
    ce.DuplicateOrderId: DuplicateOrder,
    ce.ContractUnavailable: Rejected,
    ce.NotSupported: Fatal,
    ce.InvalidProxySettings: Fatal,
    ce.ExchangeClosedByUser: Closed,
    ce.OperationFailed: Unrecognized,
    ce.NetworkError: Transient,
    ce.DDoSProtection: RateLimited,
    ce.RateLimitExceeded: RateLimited,
    ce.ExchangeNotAvailable: Transient,  # the connector escalates a sync that stays like this
    ce.OnMaintenance: Transient,
    ce.InvalidNonce: ClockRejected,
    ce.ChecksumError: Transient,  # an order book checksum (websockets), not a clock problem
    ce.RequestTimeout: Transient,
    ce.BadResponse: Transient,
    ce.NullResponse: Transient,
    ce.CancelPending: Transient,
    ce.UnsubscribeError: Unrecognized,
}


@dataclass(frozen=True)
class Meaning:
    """What one vendor error code means; `note` tells a human what to check."""

    fault: type[Fault]
    note: str = ""


TRY_AGAIN = Meaning(Transient)
SLOW_DOWN = Meaning(RateLimited)
BAD_KEY = Meaning(Fatal, "the API key or its secret is wrong")

# One table per exchange (ccxt's id): its error codes whose meaning is documented, each also
# in ccxt's exceptions map of that exchange, whose comment quotes the vendor's words.
BINANCE = {
    "-1000": TRY_AGAIN,  # UNKNOWN: "An unknown error occured while processing the request."
    "-1001": TRY_AGAIN,  # DISCONNECTED: "Internal error; ... Please try again."
    "-1003": SLOW_DOWN,  # TOO_MANY_REQUESTS: "Too much request weight used"
    # UNEXPECTED_RESP, TIMEOUT: "execution status unknown". A Transient order is looked up by
    # its client order id and never sent again.
    "-1006": TRY_AGAIN,
    "-1007": TRY_AGAIN,
    "-1008": TRY_AGAIN,  # SERVER_BUSY: "Server is currently overloaded ... try again"
    "-1022": BAD_KEY,  # "Signature for this request is not valid."
    "-2014": BAD_KEY,  # "API-key format invalid."
}
DIALECTS: dict[str, Mapping[str, Meaning]] = {
    "binance": BINANCE,
    "binanceus": BINANCE,
    "kraken": {
        "EService:Unavailable": TRY_AGAIN,
        "EService:Busy": TRY_AGAIN,
        "EGeneral:Internal error": TRY_AGAIN,
        "EDatabase:Internal error": TRY_AGAIN,
        "EAPI:Rate limit exceeded": SLOW_DOWN,
        "EOrder:Rate limit exceeded": SLOW_DOWN,
        "EAPI:Invalid signature": BAD_KEY,
        "EAPI:Invalid key": BAD_KEY,
        "EAPI:Invalid nonce": Meaning(ClockRejected),
    },
    "okx": {
        "50001": TRY_AGAIN,  # "Matching engine upgrading. Please try again later"
        "50004": TRY_AGAIN,  # "Endpoint request timeout (does not indicate success or failure
        # of order, please check order status)"
        "50013": TRY_AGAIN,  # "System is busy, please try again later"
        "50026": TRY_AGAIN,  # "System error, please try again later."
        "50011": SLOW_DOWN,  # "Request too frequent"
        "50111": BAD_KEY,  # "Invalid OK_ACCESS_KEY"
        "50113": BAD_KEY,  # "Invalid signature"
    },
    "bybit": {
        "5004": TRY_AGAIN,  # "Server Timeout"
        "10016": TRY_AGAIN,  # "System error. Please try again later."
        "170032": TRY_AGAIN,  # "Network error. Please try again later"
        "10006": SLOW_DOWN,  # "too many requests"
        "10018": SLOW_DOWN,  # "exceed ip rate limit"
        "10003": BAD_KEY,  # "Invalid apikey"
        "10004": BAD_KEY,  # "invalid sign"
    },
    "coinbase": {
        "internal_server_error": TRY_AGAIN,  # HTTP 500
        "rate_limit_exceeded": SLOW_DOWN,  # HTTP 429
    },
}
# Where a vendor's JSON error body keeps its code (binance and kucoin "code", okx "code" and
# "sCode", bybit "retCode", kraken "error": [...], coinbase "error").
CODE_KEYS = frozenset({"code", "sCode", "retCode", "error"})

# How exchanges word "that order does not exist" on a cancel (binance -2011, kraken, okx, ...):
# some answer a cancel of a finished order with a generic invalid-order error.
GONE_MARKERS = ("not found", "unknown order", "does not exist", "already closed", "not exist")
# How they word "that client order id is taken" where ccxt has no DuplicateOrderId for it
# (binance -2010 "Duplicate order sent.", okx 51016 "Duplicated clOrdId", bybit 170141).
DUPLICATE_MARKERS = ("duplicat",)

MAX_MESSAGE = 300
_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


@dataclass
class Answer:
    """The last HTTP answer one venue call received. ccxt keeps only its client's last one,
    shared by concurrent calls: this one belongs to the call that reads it."""

    status: int | None = None
    headers: Mapping[str, str] | None = None


_answer: ContextVar[Answer | None] = ContextVar("trading_exchange_answer", default=None)


def record_answers(exchange: Any) -> None:
    """Hook a ccxt client so each HTTP answer lands in the `Answer` of the call awaiting it."""
    respond = exchange.on_rest_response

    def on_rest_response(code, reason, url, method, headers, body, *request):
        answer = _answer.get()
        if answer is not None:
            answer.status, answer.headers = code, headers
        return respond(code, reason, url, method, headers, body, *request)

    exchange.on_rest_response = on_rest_response


def current_answer() -> Answer | None:
    """The Answer the requests of this task fill in, to hand to a request made elsewhere."""
    return _answer.get()


@contextmanager
def answering(answer: Answer | None = None) -> Iterator[Answer]:
    """An Answer (a fresh one, or the given one of a call awaiting in another thread) that the
    requests made inside the block (in this task) fill in."""
    answer = Answer() if answer is None else answer
    token = _answer.set(answer)
    try:
        yield answer
    finally:
        _answer.reset(token)


def classify(
    exc: BaseException,
    venue: str,
    call: str,
    *,
    dialect: str = "",
    answer: Answer | None = None,
    secrets: Iterable[str] = (),
) -> Fault | Closed:
    """What an exception from an exchange call means (`dialect`: the ccxt exchange id whose
    code table applies; `answer`: the call's last HTTP status and headers; `secrets`: values
    scrubbed from the message)."""
    if isinstance(exc, Fault | Closed):
        return exc
    text = str(exc)
    message = describe(exc, secrets)
    meaning = vendor_meaning(dialect, text)
    if meaning is not None:
        kind: type[Fault] | type[Closed] = meaning.fault
        if meaning.note:
            message = f"{message} ({meaning.note})"
    else:
        kind = next((FAULTS[c] for c in type(exc).__mro__ if c in FAULTS), Unrecognized)
        status = answer.status if answer is not None else None
        if kind is Unrecognized and isinstance(exc, ce.BaseError) and (status or 0) >= 500:
            kind = Transient
    if kind is Closed:
        return Closed(message, venue=venue, call=call)
    if kind is Rejected:
        kind = _by_wording(call, text.lower())
    if kind is RateLimited:
        headers = answer.headers if answer is not None else None
        return RateLimited(message, venue=venue, call=call, retry_after=retry_after(headers))
    return kind(message, venue=venue, call=call)


def vendor_meaning(dialect: str, text: str) -> Meaning | None:
    """The meaning of the first vendor code in `text` that the exchange's table knows."""
    table = DIALECTS.get(dialect)
    if not table:
        return None
    return next((table[c] for c in vendor_codes(text) if c in table), None)


def vendor_codes(text: str) -> list[str]:
    """The error codes of the JSON body in a ccxt message ("binance {"code": -1008, ...}")."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return []
    try:
        body, _ = json.JSONDecoder().raw_decode(text, min(starts))
    except ValueError:
        return []
    return list(_codes(body))


def _codes(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _codes(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in CODE_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
                yield str(value)
            elif key in CODE_KEYS and isinstance(value, list):
                yield from (str(v) for v in value if isinstance(v, str | int))
            else:
                yield from _codes(value)


def _by_wording(call: str, text: str) -> type[Rejected]:
    if call == "create_order" and any(m in text for m in DUPLICATE_MARKERS):
        return DuplicateOrder
    if call == "cancel_order" and any(m in text for m in GONE_MARKERS):
        return OrderNotFound
    return Rejected


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if there is one."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The exception as one short line, named by its class, without secrets or signatures."""
    text = " ".join(str(exc).split()) or "(no message)"
    text = _QUERY.sub(r"\1?...", text)  # signed query strings carry signatures, maybe keys
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    return f"{type(exc).__name__}: {text}"
