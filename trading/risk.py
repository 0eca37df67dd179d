"""The risk gate: every order intent, from the strategy or a command, passes `check()`.

`check()` is a pure function over a small `RiskSnapshot` (no I/O, no clock): it returns
`Allowed(amount)` or `Refused(reason)`, and a refusal is a value the user is told, never an
exception. Exits are gated too: never more than the position or the free base balance, and
only where the mode table (trading/modes.py) lets their purpose out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from trading.models import Market, Position, Side
from trading.modes import Mode, Purpose, allows
from trading.settings import TradingSettings


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order someone wants: a buy of `amount` (base) or a sell of a position."""

    symbol: str
    side: Side
    amount: float  # in base; for an exit, what is wanted (clamped by the gate)
    price: float  # reference price for notional checks (ask for buys, bid for sells)
    purpose: Purpose = Purpose.ENTRY


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """What the gate needs to know about one account at one moment."""

    mode: Mode
    now: float  # epoch seconds
    quote: str
    free_quote: float
    equity: float  # in quote: free + held, positions at market
    exposure: float  # in quote: value of open positions and pending entries
    positions: Mapping[str, Position]
    free_base: Mapping[str, float]  # currency -> free balance
    markets: Mapping[str, Market]
    bans: frozenset[str] = frozenset()
    pending_entries: frozenset[str] = frozenset()  # symbols with an entry order still open
    last_exit_at: Mapping[str, float] = field(default_factory=dict)  # symbol -> epoch
    held_outside: frozenset[str] = frozenset()  # coins the account holds beyond the bot's
    exiting: frozenset[str] = frozenset()  # symbols with a sell already on its way
    sending: frozenset[str] = frozenset()  # ... of them, those whose sell is going out now
    caution: str | None = None  # why entries are held (an answer nobody recognised), if so
    market_now: float | None = None  # the market's clock, for cooldowns (else `now`)


@dataclass(frozen=True, slots=True)
class Allowed:
    amount: float  # what may be ordered, in base (an exit may be clamped)

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str

    def __bool__(self) -> bool:
        return False


Decision = Allowed | Refused


def check(intent: OrderIntent, snap: RiskSnapshot, limits: TradingSettings) -> Decision:
    """The one gate every order intent passes."""
    if intent.amount <= 0 or intent.price <= 0:
        return Refused(f"{intent.symbol}: nothing to order (amount {intent.amount:g})")
    market = snap.markets.get(intent.symbol)
    if market is None:
        return Refused(f"{intent.symbol}: unknown market")
    if intent.side is Side.BUY:
        return _check_entry(intent, snap, limits, market)
    return _check_exit(intent, snap, market)


def _check_entry(
    intent: OrderIntent, snap: RiskSnapshot, limits: TradingSettings, market: Market
) -> Decision:
    symbol, cost = intent.symbol, intent.amount * intent.price
    refusal = mode_refusal(intent, snap.mode, snap.bans, snap.caution) or _entry_state(
        symbol, snap, limits, market, intent.purpose
    )
    if refusal:
        return Refused(refusal)
    if snap.free_quote < limits.min_balance:
        return Refused(
            f"free balance {snap.free_quote:.2f} {snap.quote} is below the minimum "
            f"{limits.min_balance:g} {snap.quote}"
        )
    if cost > snap.free_quote:
        return Refused(
            f"{symbol}: stake {cost:.2f} {snap.quote} is above the free balance "
            f"{snap.free_quote:.2f} {snap.quote}"
        )
    too_small = _below_minimum(market, intent.amount, cost)
    if too_small:
        return Refused(f"{symbol}: {too_small}")
    if snap.equity <= 0 or (snap.exposure + cost) / snap.equity > limits.max_exposure:
        share = (snap.exposure + cost) / snap.equity if snap.equity > 0 else float("inf")
        return Refused(
            f"{symbol}: exposure would be {share:.0%} of equity, above the limit "
            f"{limits.max_exposure:.0%}"
        )
    return Allowed(intent.amount)


def mode_refusal(
    intent: OrderIntent, mode: Mode, bans: Collection[str], caution: str | None = None
) -> str | None:
    """The part of the gate a command can change while an order waits to go out (a pause, a
    stop, a kill, a ban): None if the intent may still be sent, else why not. The router asks
    again right before every send, so an order gated before a /pause never leaves after it."""
    if not allows(mode, intent.side, intent.purpose):
        return f"trader is {mode}: no {_what(intent)} now"
    if intent.side is Side.BUY:
        if intent.symbol in bans:
            return f"{intent.symbol} is banned"
        if caution:
            return f"entries held: {caution}"
    return None


def _what(intent: OrderIntent) -> str:
    if intent.purpose is Purpose.MANUAL:
        return f"manual {intent.side}"
    if intent.side is Side.BUY:
        return "entry"
    if intent.purpose is Purpose.EXIT:
        return "strategy exit"
    if intent.purpose is Purpose.PROTECT:
        return "stop-loss or take-profit exit"
    return f"{intent.purpose} exit"


def cooldown_left(symbol: str, snap: RiskSnapshot, limits: TradingSettings) -> float:
    """Seconds of the market's clock before `symbol` may be entered again (0: now)."""
    last_exit = snap.last_exit_at.get(symbol)
    if last_exit is None:
        return 0.0
    now = snap.market_now if snap.market_now is not None else snap.now
    return max(0.0, last_exit + limits.reentry_cooldown_seconds - now)


def _entry_state(
    symbol: str,
    snap: RiskSnapshot,
    limits: TradingSettings,
    market: Market,
    purpose: Purpose = Purpose.ENTRY,
) -> str | None:
    """Refusals that do not depend on the amount."""
    if not market.active or not market.spot:
        return f"{symbol}: market is not an active spot market"
    if market.quote != snap.quote:
        return f"{symbol}: not quoted in {snap.quote}"
    if symbol in snap.positions or symbol in snap.pending_entries:
        return f"{symbol}: already held"
    if symbol in snap.held_outside:
        return f"{symbol}: the account already holds {market.base} outside the bot"
    held = len(set(snap.positions) | set(snap.pending_entries))
    if held >= limits.max_positions:
        return f"MAX_POSITIONS reached ({held}/{limits.max_positions})"
    wait = cooldown_left(symbol, snap, limits)
    if wait > 0 and purpose is not Purpose.MANUAL:  # the strategy's loop guard, not the owner's
        return f"{symbol}: re-entry cooldown, {wait:.0f} s left (/unlock {symbol} clears it)"
    return None


def _check_exit(intent: OrderIntent, snap: RiskSnapshot, market: Market) -> Decision:
    symbol = intent.symbol
    refusal = mode_refusal(intent, snap.mode, snap.bans)
    if refusal:
        return Refused(refusal)
    position = snap.positions.get(symbol)
    if position is None:
        return Refused(f"{symbol}: no position opened by the bot")
    # A stop may go back beside a sell of unknown outcome (the exchange lets only one of the
    # two hold the coins), never beside one going out now.
    on_its_way = snap.sending if intent.purpose is Purpose.GUARD else snap.exiting
    if symbol in on_its_way:
        return Refused(f"{symbol}: an exit is already on its way")
    free = snap.free_base.get(market.base, 0.0)
    amount = min(intent.amount, position.amount, free)
    if amount <= 0:
        return Refused(f"{symbol}: no free {market.base} to sell (it may be held by an order)")
    if market.amount_step:
        amount = round_down(amount, market.amount_step)
    too_small = _below_minimum(market, amount, amount * intent.price)
    if too_small:
        return Refused(f"{symbol}: {too_small}")
    return Allowed(amount)


def _below_minimum(market: Market, amount: float, cost: float) -> str | None:
    if amount <= 0 or amount < market.min_amount:
        return f"amount {amount:g} is below the market minimum {market.min_amount:g}"
    if cost < market.min_cost:
        return f"order value {cost:.2f} is below the market minimum {market.min_cost:g}"
    return None


def round_down(amount: float, step: float | None) -> float:
    """Round an amount down to the market's lot size (never up: never more than we have)."""
    if not step:
        return amount
    steps = int(amount / step + 1e-9)
    return round(steps * step, 12)


def round_trips(closed_at: Iterable[float], now: float, window: float) -> int:
    """How many round trips of one symbol ended inside the window before `now`."""
    return sum(1 for at in closed_at if now - window <= at <= now)


def loop_guard_trips(closed_at: Iterable[float], now: float, limits: TradingSettings) -> int | None:
    """The buy-sell loop guard: the number of round trips when a symbol flipped more than
    LOOP_GUARD_ROUND_TRIPS times inside the window (ban it), else None."""
    trips = round_trips(closed_at, now, limits.loop_guard_window_seconds)
    return trips if trips > limits.loop_guard_round_trips else None


def entry_amount(stake: float, price: float, market: Market) -> float:
    """Base amount to buy for a stake in quote, rounded down to the lot size."""
    if price <= 0:
        return 0.0
    return round_down(stake / price, market.amount_step)


@dataclass(frozen=True, slots=True)
class Level:
    """A stop or target the owner gave: a price, or a percent away from the entry price."""

    value: float
    percent: bool = False


def manual_levels(
    price: float, stop: Level | None, target: Level | None, limits: TradingSettings
) -> tuple[float, float] | str:
    """(stop-loss, take-profit) of a manual buy at `price`: the owner's levels, else
    MANUAL_STOP_LOSS_PCT / MANUAL_TAKE_PROFIT_PCT; or why they cannot be (a refusal)."""
    stop = stop or Level(limits.manual_stop_loss_pct, percent=True)
    target = target or Level(limits.manual_take_profit_pct, percent=True)
    stop_loss = price * (1 - stop.value / 100) if stop.percent else stop.value
    take_profit = price * (1 + target.value / 100) if target.percent else target.value
    if not 0 < stop_loss < price:
        return f"stop-loss {stop_loss:.8g} must be below the price {price:.8g}"
    if take_profit <= price:
        return f"take-profit {take_profit:.8g} must be above the price {price:.8g}"
    return stop_loss, take_profit
