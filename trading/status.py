"""What a trader shows, as frozen data read from its parts with no I/O: `info()` for /info
(positions priced now, balances, health) and `status()` for /ping, /debug, /healthz and
/metrics, which read the snapshot instead of the trader's internals."""

from __future__ import annotations

from dataclasses import dataclass, field

from trading.connector import HealthSnapshot
from trading.feed_consumer import NO_FEED, FeedStatus
from trading.modes import Mode
from trading.parts import Parts
from trading.results import InfoResult, PositionView


@dataclass(frozen=True)
class TraderStatus:
    """One trader at one moment."""

    account: str
    mode: Mode
    started: bool
    aborted: bool
    last_cycle_at: float | None
    last_cycle_seconds: float | None
    last_sync_at: float | None
    last_error: str | None
    health: HealthSnapshot
    quote: str
    equity: float
    exposure: float  # fraction of equity in positions and pending entries
    positions: int
    open_orders: int
    emergencies: tuple[str, ...] = ()
    caution: str | None = None  # why entries are held, if they are
    orders: dict[str, int] = field(default_factory=dict)  # placed, rejected, refused, unknown
    stops_placed: int = 0  # protective stops placed at the exchange
    stops_replaced: int = 0  # of those, re-placed after they went missing
    feed: FeedStatus = NO_FEED  # the exchange's event feed


@dataclass
class Timing:
    """When the trader last cycled (kept by the Trader)."""

    started: bool = False
    last_cycle_at: float | None = None
    last_cycle_seconds: float | None = None


def status(
    parts: Parts, timing: Timing, caution: str | None, feed: FeedStatus = NO_FEED
) -> TraderStatus:
    equity, exposure = parts.account.equity()
    return TraderStatus(
        account=parts.label,
        mode=parts.state.mode,
        started=timing.started,
        aborted=parts.state.aborted,
        last_cycle_at=timing.last_cycle_at,
        last_cycle_seconds=timing.last_cycle_seconds,
        last_sync_at=parts.account.last_sync_at,
        last_error=parts.state.last_error,
        health=parts.connector.health,
        quote=parts.settings.quote,
        equity=equity,
        exposure=exposure / equity if equity > 0 else 0.0,
        positions=len(parts.book.positions),
        open_orders=len(parts.book.orders),
        emergencies=tuple(sorted(parts.state.emergencies)),
        caution=caution,
        orders=dict(parts.router.counts),
        stops_placed=parts.guards.placed,
        stops_replaced=parts.guards.replaced,
        feed=feed,
    )


def info(parts: Parts, timing: Timing, feed: FeedStatus = NO_FEED) -> InfoResult:
    """Mode, balances, positions priced now, exposure, health, last cycle. No I/O."""
    account = parts.account
    equity, exposure = account.equity()
    bans = parts.store.bans(parts.label)
    views = []
    for p in parts.book.positions.values():
        ticker = account.tickers.get(p.symbol)
        price = account.price(p.symbol) if ticker else None
        value = p.amount * (price if price is not None else p.entry_price)
        pnl = value - p.cost
        guard = parts.guards.view(p)
        views.append(
            PositionView(
                symbol=p.symbol,
                amount=p.amount,
                entry_price=p.entry_price,
                price=price,
                value=value,
                pnl=pnl,
                pnl_pct=100.0 * pnl / p.cost if p.cost > 0 else 0.0,
                stop_loss=p.stop_loss,
                take_profit=p.take_profit,
                opened_at=p.opened_at,
                banned=p.symbol in bans,
                guard=guard.where,
                guard_why=guard.why,
                manual=p.manual,
            )
        )
    quote = parts.settings.quote
    balance = account.balance
    return InfoResult(
        account=parts.label,
        ok=True,
        mode=parts.state.mode,
        quote=quote,
        free_quote=parts.book.free.get(quote, balance.free_of(quote)),
        equity=equity,
        exposure=exposure / equity if equity > 0 else 0.0,
        positions=tuple(views),
        open_orders=len(parts.book.orders),
        bans=len(bans),
        health=parts.connector.health,
        started=timing.started,
        last_cycle_at=timing.last_cycle_at,
        last_cycle_seconds=timing.last_cycle_seconds,
        last_sync_at=account.last_sync_at,
        last_error=parts.state.last_error,
        balances={k: v for k, v in balance.total.items() if v},
        feed=feed.state,
    )
