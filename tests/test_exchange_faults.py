"""The fault mapping: every ccxt exception class has a verdict; unknown means Unrecognized."""

from __future__ import annotations

import inspect

import ccxt
import ccxt.async_support as ccxt_async
import pytest
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
from trading.venues.ccxt_faults import FAULTS, MAX_MESSAGE, Answer, classify, retry_after

# The verdicts, written out again on purpose: a change to the table must change this too.
EXPECTED: dict[type[Fault] | type[Closed], list[type[Exception]]] = {
    Unrecognized: [ce.BaseError, ce.ExchangeError, ce.OperationFailed, ce.UnsubscribeError],
    Closed: [ce.ExchangeClosedByUser],
    Fatal: [
        ce.AuthenticationError,
        ce.PermissionDenied,
        ce.AccountNotEnabled,
        ce.AccountSuspended,
        ce.ArgumentsRequired,
        ce.ManualInteractionNeeded,
        ce.RestrictedLocation,
        ce.InvalidAddress,
        ce.AddressPending,
        ce.NotSupported,
        ce.InvalidProxySettings,
    ],
    Rejected: [
        ce.BadRequest,
        ce.BadSymbol,
        ce.OperationRejected,
        ce.NoChange,
        ce.MarginModeAlreadySet,
        ce.MarketClosed,
        ce.InvalidOrder,
        ce.OrderNotCached,
        ce.OrderImmediatelyFillable,
        ce.OrderNotFillable,
        ce.ContractUnavailable,
    ],
    InsufficientFunds: [ce.InsufficientFunds],  # a Rejected the guards read (trading/unsure.py)
    OrderNotFound: [ce.OrderNotFound],
    DuplicateOrder: [ce.DuplicateOrderId],
    ClockRejected: [ce.InvalidNonce],
    RateLimited: [ce.DDoSProtection, ce.RateLimitExceeded],
    Transient: [
        ce.NetworkError,
        ce.ExchangeNotAvailable,
        ce.OnMaintenance,
        ce.ChecksumError,
        ce.RequestTimeout,
        ce.BadResponse,
        ce.NullResponse,
        ce.CancelPending,
    ],
}
CASES = [(cls, fault) for fault, classes in EXPECTED.items() for cls in classes]


def ccxt_classes() -> set[type[BaseException]]:
    """Every exception class ccxt defines, found three independent ways."""
    from_module = {
        obj for obj in vars(ce).values() if inspect.isclass(obj) and issubclass(obj, ce.BaseError)
    }

    def names(tree: dict) -> set[str]:
        return {n for name, sub in tree.items() for n in (name, *names(sub))}

    from_hierarchy = {getattr(ce, name) for name in names(ce.error_hierarchy)}
    from_subclasses: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = [ce.BaseError]
    while todo:  # bounded: a class tree is finite
        cls = todo.pop()
        if cls.__module__.startswith("ccxt") and cls not in from_subclasses:
            from_subclasses.add(cls)
            todo.extend(cls.__subclasses__())
    return from_module | from_hierarchy | from_subclasses


def test_every_ccxt_exception_class_has_an_explicit_verdict():
    missing = {c.__name__ for c in ccxt_classes()} - {c.__name__ for c in FAULTS}
    assert not missing, f"new ccxt exception classes need a verdict in FAULTS: {missing}"


def test_the_table_and_the_expected_verdicts_cover_the_same_classes():
    assert {cls for cls, _ in CASES} == set(FAULTS) == ccxt_classes()


@pytest.mark.parametrize(("ccxt_class", "fault_class"), CASES, ids=lambda x: x.__name__)
def test_each_ccxt_class_maps_to_its_fault(ccxt_class, fault_class):
    fault = classify(ccxt_class("binance something happened"), "binance:master", "fetch_balance")
    assert type(fault) is fault_class
    assert fault.venue == "binance:master" and fault.call == "fetch_balance"
    assert ccxt_class.__name__ in fault.message


def test_ccxt_top_level_reexports_are_the_same_classes():
    # ccxt.async_support raises the classes of ccxt.base.errors under these names.
    assert ccxt.NetworkError is ce.NetworkError
    assert ccxt_async.InvalidNonce is ce.InvalidNonce


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad number"),
        KeyError("price"),
        TypeError("NoneType"),
        RuntimeError("boom"),
        ce.ExchangeError("binance {'code': -9999}"),
        ce.OperationFailed("binance {'code': -1000}"),
        ce.BaseError("?"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_unknown_and_generic_errors_are_unrecognized_never_fatal_at_once(exc):
    assert type(classify(exc, "binance:master", "sync")) is Unrecognized


def test_a_subclass_takes_the_verdict_of_its_most_specific_known_class():
    class VenueOrderGone(ce.OrderNotFound):
        pass

    class VenueClockSkew(ce.InvalidNonce):
        pass

    class VenueThrottle(ce.RateLimitExceeded):
        pass

    assert type(classify(VenueOrderGone("x"), "v", "c")) is OrderNotFound
    assert type(classify(VenueClockSkew("x"), "v", "c")) is ClockRejected
    assert type(classify(VenueThrottle("x"), "v", "c")) is RateLimited


def test_ddos_protection_and_rate_limit_exceeded_are_siblings_but_both_rate_limited():
    assert not issubclass(ce.RateLimitExceeded, ce.DDoSProtection)
    assert not issubclass(ce.DDoSProtection, ce.RateLimitExceeded)
    for cls in (ce.DDoSProtection, ce.RateLimitExceeded):
        fault = classify(cls("429"), "v", "c", answer=Answer(429, {"Retry-After": "12"}))
        assert isinstance(fault, RateLimited) and fault.retry_after == 12.0


def test_retry_after_is_read_case_insensitively_and_as_an_http_date():
    assert retry_after({"retry-after": "3.5"}) == 3.5
    assert retry_after({"RETRY-AFTER": "0"}) == 0.0
    date = "Wed, 21 Oct 2015 07:28:30 GMT"  # epoch 1445412510
    assert retry_after({"Retry-After": date}, now=1445412500.0) == 10.0
    assert retry_after({"Retry-After": date}, now=1445412600.0) == 0.0


@pytest.mark.parametrize("headers", [None, {}, {"Content-Type": "text/html"}, {"Retry-After": "?"}])
def test_rate_limited_without_a_usable_retry_after_has_none(headers):
    fault = classify(ce.DDoSProtection("418"), "v", "c", answer=Answer(418, headers))
    assert isinstance(fault, RateLimited) and fault.retry_after is None


def test_retry_after_is_only_attached_to_rate_limits():
    answer = Answer(503, {"Retry-After": "5"})
    fault = classify(ce.ExchangeNotAvailable("503"), "v", "c", answer=answer)
    assert type(fault) is Transient and not hasattr(fault, "retry_after")


def test_messages_never_contain_credentials_or_signed_query_strings():
    key, secret = "KEY-abcdefghijklmnop", "SECRET-zyxwvutsrqponm"
    exc = ce.ExchangeNotAvailable(
        f"kraken GET https://api.x.com/0/private/Balance?apiKey={key}&signature=deadbeef "
        f"404 Not Found echo {secret} and {key}"
    )
    fault = classify(exc, "kraken:master", "fetch_balance", secrets=(key, secret, ""))
    assert key not in str(fault) and secret not in str(fault)
    assert "deadbeef" not in fault.message
    assert "https://api.x.com/0/private/Balance?..." in fault.message


def test_long_vendor_messages_are_cut_and_whitespace_collapsed():
    html = "<html>\n\n" + "x" * 5000 + "\n</html>"
    fault = classify(ce.ExchangeNotAvailable(html), "v", "c")
    assert len(fault.message) <= MAX_MESSAGE + len("ExchangeNotAvailable: ")
    assert "\n" not in fault.message and fault.message.endswith("...")


def test_an_empty_message_still_names_the_class():
    assert classify(ce.RequestTimeout(), "v", "c").message == "RequestTimeout: (no message)"


def test_a_fault_is_passed_through_unchanged():
    original = Rejected("already classified", venue="paper:main", call="create_order")
    assert classify(original, "other", "other") is original
