"""Exchanges and accounts: `EXCHANGES`, and the accounts that `<EXCHANGE>_<ACCOUNT>_API_*`
credentials define, refusing two accounts that are really one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatbot.config_reader import Reader, Secret
from trading.venues.ccxt_exchanges import known_exchange_ids, required_credentials, supports_sandbox

PAPER = "paper"
# ccxt credential name -> our variable suffix
CREDENTIAL_SUFFIXES = {"apiKey": "API_KEY", "secret": "API_SECRET", "password": "API_PASSWORD"}


@dataclass(frozen=True)
class AccountSettings:
    """One exchange account. `missing` names the credential variables not set."""

    exchange: str
    account: str
    api_key: Secret | None = None
    api_secret: Secret | None = None
    api_password: Secret | None = None
    sandbox: bool = False
    missing: tuple[str, ...] = ()

    @property
    def has_credentials(self) -> bool:
        return not self.missing

    @property
    def key_variable(self) -> str:
        return f"{self.exchange.upper()}_{self.account}_API_KEY"


def read_exchanges(r: Reader) -> tuple[str, ...]:
    value = r.raw("EXCHANGES") or PAPER
    ids = tuple(dict.fromkeys(x.strip().lower() for x in value.split(",") if x.strip()))
    known = known_exchange_ids()
    bad = [x for x in ids if x != PAPER and x not in known]
    if bad:
        r.fail("EXCHANGES", value, f"unknown exchange id {', '.join(bad)} (ccxt ids or 'paper')")
        return tuple(x for x in ids if x not in bad) or (PAPER,)
    return ids or (PAPER,)


def read_accounts(r: Reader, exchanges: tuple[str, ...]) -> tuple[AccountSettings, ...]:
    accounts: list[AccountSettings] = []
    for exchange in exchanges:
        if exchange == PAPER:
            accounts.append(AccountSettings(exchange=PAPER, account="MAIN"))
            continue
        prefix = exchange.upper() + "_"
        sandbox = r.bool(f"{prefix}SANDBOX", False)
        if sandbox and not supports_sandbox(exchange):
            r.problems.append(
                f"{prefix}SANDBOX=true: {exchange} has no testnet in ccxt; unset it or use "
                "DRY_RUN=true for a simulated account"
            )
        names = _account_names(r.env, prefix)
        seen: dict[str, str] = {}
        for name in names:
            if name.upper() in seen:
                r.problems.append(
                    f"{prefix}{seen[name.upper()]}_*, {prefix}{name}_*: two accounts named "
                    f"{exchange}:{name.lower()} (account names ignore case); rename one"
                )
            seen[name.upper()] = name
        required = required_credentials(exchange)
        needed = [suffix for name, suffix in CREDENTIAL_SUFFIXES.items() if name in required]
        for name in names or ["MASTER"]:
            get = {s: r.secret(f"{prefix}{name}_{s}") for s in CREDENTIAL_SUFFIXES.values()}
            missing = tuple(f"{prefix}{name}_{s}" for s in needed if get[s] is None)
            accounts.append(
                AccountSettings(
                    exchange=exchange,
                    account=name,
                    api_key=get["API_KEY"],
                    api_secret=get["API_SECRET"],
                    api_password=get["API_PASSWORD"],
                    sandbox=sandbox,
                    missing=missing,
                )
            )
    _refuse_shared_keys(r, accounts)
    return tuple(accounts)


def _refuse_shared_keys(r: Reader, accounts: list[AccountSettings]) -> None:
    """Each account has its own limits (positions, exposure, balance). One key under two names
    is one exchange account traded twice over: every limit doubled. Across exchanges a shared
    key is a copy-paste slip. Only the variables are named, never the key."""
    first: dict[Secret, AccountSettings] = {}
    for account in accounts:
        if account.api_key is None:
            continue
        other = first.setdefault(account.api_key, account)
        if other is not account:
            r.problems.append(
                f"{other.key_variable} and {account.key_variable} are the same key: one account "
                "would trade twice against one set of limits"
            )


def _account_names(env: Mapping[str, str], prefix: str) -> list[str]:
    """Accounts named by `<EXCHANGE>_<ACCOUNT>_API_*` variables; account names may contain
    underscores, so split on the known prefix and suffix, never on every underscore."""
    names: list[str] = []
    for key in sorted(env):
        if not key.startswith(prefix):
            continue
        for suffix in CREDENTIAL_SUFFIXES.values():
            if key.endswith("_" + suffix) and len(key) > len(prefix) + len(suffix) + 1:
                name = key[len(prefix) : -len(suffix) - 1]
                if name not in names:
                    names.append(name)
    return names
