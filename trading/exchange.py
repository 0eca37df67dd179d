"""The ccxt connector: the only module that talks to ccxt.

(Being filled in: metadata helpers used by configuration validation come first.)
"""

from __future__ import annotations

import functools

import ccxt.async_support as ccxt


def known_exchange_ids() -> frozenset[str]:
    return frozenset(ccxt.exchanges)


@functools.cache
def _metadata(exchange_id: str) -> tuple[frozenset[str], bool]:
    inst = getattr(ccxt, exchange_id)()
    required = frozenset(k for k, v in inst.requiredCredentials.items() if v)
    has_testnet = bool(inst.urls.get("test"))
    return required, has_testnet


def required_credentials(exchange_id: str) -> frozenset[str]:
    """ccxt's names of the credentials this exchange needs: apiKey, secret, password, ..."""
    return _metadata(exchange_id)[0]


def supports_sandbox(exchange_id: str) -> bool:
    """Whether ccxt has testnet URLs (set_sandbox_mode raises TypeError for kraken, coinbase)."""
    return _metadata(exchange_id)[1]
