"""Which exchange each configured account trades on: the paper exchange, the paper exchange
fed with live prices (DRY_RUN on a real exchange), or the real account through ccxt.

This is the one place where DRY_RUN is decided: the connector and the engine never ask.
A paper or dry-run account is kept under DATA_DIR/paper (trading/venues/paper_state.py), so a
restart continues it; PAPER_RESET=true starts it afresh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatbot.config import PAPER, AccountSettings, Secret, Settings
from trading.clock import Clock, RealClock, ScaledClock
from trading.models import Venue, account_label
from trading.venues.ccxt_exchanges import supports_cancel_all_after
from trading.venues.ccxt_venue import CcxtVenue
from trading.venues.paper import PaperExchange
from trading.venues.paper_state import PaperState, state_path

_log = logging.getLogger("chatbot.venues")


@dataclass(frozen=True)
class Plan:
    """What one account becomes: `mode` is paper / dry-run / sandbox / live, or `skip` with
    the reason when it cannot run."""

    account: AccountSettings
    mode: str
    skip: str | None = None


def plan(account: AccountSettings, settings: Settings) -> Plan:
    if account.exchange == PAPER:
        return Plan(account, "paper")
    if settings.dry_run:
        return Plan(account, "dry-run")
    if not account.has_credentials:
        return Plan(
            account, "live", skip=f"credentials not configured ({', '.join(account.missing)})"
        )
    return Plan(account, "sandbox" if account.sandbox else "live")


def trading_for_real(settings: Settings) -> list[AccountSettings]:
    """The accounts that would send real orders (to the exchange, or to its testnet)."""
    plans = (plan(a, settings) for a in settings.accounts)
    return [p.account for p in plans if p.mode in ("live", "sandbox") and p.skip is None]


def channel_refusal(settings: Settings, *, terminal: bool) -> str | None:
    """Why the bot must not start, or None. Real orders need a channel that can stop them:
    Telegram (token and chat), or a terminal on stdin for the console. On a server stdin is
    /dev/null, so without Telegram nothing but killing the process could stop the trading."""
    accounts = trading_for_real(settings)
    telegram = settings.telegram
    if not accounts or terminal or (telegram.enabled and telegram.chat_id is not None):
        return None
    labels = ", ".join(account_label(a.exchange, a.account) for a in accounts)
    return (
        f"TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID: required to trade for real ({labels} with "
        "DRY_RUN=false) when no terminal is attached, or nothing could stop the bot but "
        "killing the process; set both, or run it in a terminal, or set DRY_RUN=true"
    )


class VenueFactory:
    """Builds the venue of a plan. Each dry-run account gets its own public ccxt feed, so
    closing one account's venue never pulls the prices from under another. With `keep_state`
    a paper or dry-run account continues the one saved under DATA_DIR (PaperStateError if that
    cannot be read); without, it starts afresh in memory (`check` touches no saved account)."""

    def __init__(
        self,
        settings: Settings,
        *,
        paper_clock: Clock | None = None,
        ccxt_config: dict | None = None,
        keep_state: bool = True,
    ) -> None:
        self._settings = settings
        self._paper_clock = paper_clock
        self._ccxt_config = ccxt_config
        self._keep_state = keep_state

    def build(self, p: Plan) -> Venue:
        a, s = p.account, self._settings
        if p.mode == "paper":
            state = self._state(PAPER, a.account)
            clock = self._paper_clock or (
                state.paper_clock(s.paper.speed) if state else ScaledClock(s.paper.speed)
            )
            return self._paper(clock, PAPER, a.account, feed=None, state=state)
        if p.mode == "dry-run":
            feed = CcxtVenue(a.exchange, a.account, config=self._ccxt_config)  # public only
            state = self._state(a.exchange, a.account)
            return self._paper(RealClock(), a.exchange, a.account, feed=feed, state=state)
        return self.real(a)

    def real(self, account: AccountSettings) -> CcxtVenue:
        """The real account through ccxt (also how `check` verifies a dry-run's credentials)."""
        return CcxtVenue(
            account.exchange,
            account.account,
            api_key=_value(account.api_key),
            secret=_value(account.api_secret),
            password=_value(account.api_password),
            sandbox=account.sandbox,
            recv_window_ms=self._settings.trading.recv_window_ms,
            config=self._ccxt_config,
        )

    def _state(self, exchange: str, account: str) -> PaperState | None:
        if not self._keep_state:
            return None
        path = state_path(self._settings.data_dir, exchange, account)
        return PaperState(path, fresh=self._settings.paper.reset)

    def _paper(
        self,
        clock: Clock,
        name: str,
        account: str,
        *,
        feed: CcxtVenue | None,
        state: PaperState | None,
    ) -> Venue:
        s = self._settings
        try:
            return PaperExchange(
                clock=clock,
                name=name,
                account=account,
                feed=feed,
                quote=s.trading.quote,
                balances={s.trading.quote: s.paper.balance},
                fee_rate=s.paper.fee_rate,
                seed=s.paper.seed,
                markets=s.paper.markets,
                recv_window_ms=s.trading.recv_window_ms,
                state=state,
            )
        except BaseException:
            if state is not None:
                state.close()
            raise


def build_venues(
    settings: Settings,
    *,
    paper_clock: Clock | None = None,
    log: logging.Logger = _log,
    ccxt_config: dict | None = None,
) -> list[Venue]:
    """One venue per runnable account (`ccxt_config`: merged into every ccxt constructor, e.g.
    urls of a test server). Accounts that cannot run are skipped with one log line each."""
    factory = VenueFactory(settings, paper_clock=paper_clock, ccxt_config=ccxt_config)
    venues: list[Venue] = []
    for p in (plan(a, settings) for a in settings.accounts):
        a = p.account
        if p.skip is not None:
            log.warning("%s %s: %s - skipping", a.exchange, a.account, p.skip)
            continue
        if p.mode == "dry-run":
            log.info(
                "%s %s: DRY_RUN - live %s prices, simulated orders and balance",
                a.exchange,
                a.account,
                a.exchange,
            )
        venues.append(factory.build(p))
    _log_spread(venues, settings, log)
    _log_dead_man(venues, log)
    return venues


def _log_spread(venues: list[Venue], settings: Settings, log: logging.Logger) -> None:
    exchanges = {v.name for v in venues if v.name != PAPER}
    if len(exchanges) == 1 and not settings.suppress_single_exchange_warning:
        log.warning(
            "every account trades on %s: its outages and rate limits hit them all at once "
            "(add an exchange to EXCHANGES to spread the load, or set "
            "SUPPRESS_SINGLE_EXCHANGE_WARNING=true)",
            exchanges.pop(),
        )


def _log_dead_man(venues: list[Venue], log: logging.Logger) -> None:
    for v in venues:
        label = account_label(v.name, v.account)
        log.info("%s: exchange-side cancel-all-after (dead man's switch): %s", label, dead_man(v))


def dead_man(venue: Venue) -> str:
    """Whether an exchange-side cancel-all-after guards this venue's orders, in words."""
    if isinstance(venue, PaperExchange):
        if venue.name == PAPER:
            return "simulated"
        live = "available" if supports_cancel_all_after(venue.name) else "not available"
        return f"simulated (live {venue.name}: {live})"
    if venue.has_cancel_all_after:
        return "available"
    return "not available (only the in-process dead switch)"


def _value(secret: Secret | None) -> str | None:
    return secret.get() if secret is not None else None
