"""What a running trader decides each cycle from fresh prices: its positions' exits first
(stop-loss, take-profit, the strategy's signal), then new entries, then the stops that must
rest at the exchange for them.

Only this cycle's tickers are trusted (never a stale one). A stop-market resting at the
exchange does a position's stop-loss there; the bot still moves it (trailing stop,
break-even). A banned or manual position keeps its stop and target; only its exit signal goes
unread (a ban stops entries; a manual position is the owner's).
"""

from __future__ import annotations

from collections.abc import Collection

from trading.book import is_dust
from trading.errors import Recoverable
from trading.guards import moved_stop
from trading.models import OrderType, Side, Ticker
from trading.modes import Purpose
from trading.order_commands import expire_entries
from trading.orders import Placement
from trading.pacing import Priority, at
from trading.parts import Parts
from trading.risk import OrderIntent, entry_amount
from trading.scanner import Scanner
from trading.strategies.base import Strategy


class Decisions:
    """The strategy's side of one trader's cycle."""

    def __init__(self, parts: Parts, strategy: Strategy, scanner: Scanner) -> None:
        self.parts = parts
        self.strategy = strategy
        self.scanner = scanner

    async def trade(self) -> None:
        """A running trader's cycle after the sync: exits, entries, stops."""
        p = self.parts
        await expire_entries(p)
        positions = p.book.positions
        bans = p.store.bans(p.label)
        per_candidate = max(1, len(self.strategy.timeframes))
        budget = p.connector.budget()
        held = list(positions)
        signalled = [s for s in held if s not in bans and not positions[s].manual]
        reserve = min(budget // 2, len(signalled) * per_candidate)
        exclude = set(positions) | set(p.book.pending_entries()) | set(bans)
        exclude |= p.account.held_outside()
        # The scan's reads give way to any other request of the account, and the scan to a command.
        with at(Priority.SCAN), p.lock.reading():
            scan = await self.scanner.scan(
                exclude=exclude, budget=budget - reserve, watch=positions
            )
        fresh = dict(scan.tickers)
        fresh.update(await p.account.fetch_tickers([s for s in held if s not in fresh]))
        p.account.tickers.update(fresh)
        await self.protect(held, fresh, signals=set(signalled), candle_budget=reserve)
        for candidate in scan.candidates:
            if len(p.book.positions) + len(p.book.pending_entries()) >= p.settings.max_positions:
                break
            await self._enter(candidate.symbol, candidate.ticker, candidate.signal)
        await p.guards.ensure(p.book.positions)  # new entries get theirs at once

    async def protect(
        self,
        symbols: list[str],
        fresh: dict[str, Ticker],
        *,
        signals: Collection[str] = (),
        candle_budget: int = 0,
    ) -> None:
        """Stop-loss and take-profit from this cycle's ticker, then, for the `signals`
        symbols, the strategy's exit signal."""
        p = self.parts
        for symbol in symbols:
            position = p.book.positions.get(symbol)
            ticker = fresh.get(symbol)
            if position is None or ticker is None or self._exit_resting(symbol):
                continue
            price = ticker.bid
            moved = moved_stop(position, price, p.settings)
            if moved is not None:
                p.log.info("%s: stop-loss %.8g -> %.8g", symbol, position.stop_loss, moved)
                p.book.move_stop(symbol, moved)
                position = p.book.positions[symbol]
            resting = p.guards.resting(symbol)
            on_exchange = (
                moved is None
                and resting is not None
                and resting.confirmed
                and resting.order.type is OrderType.STOP_MARKET
            )
            if not on_exchange and position.stop_loss is not None and price <= position.stop_loss:
                await self._exit(symbol, price, "stop-loss", Purpose.PROTECT)
            elif position.take_profit is not None and price >= position.take_profit:
                await self._exit(symbol, price, "take-profit", Purpose.PROTECT)
            elif symbol in signals and candle_budget >= len(self.strategy.timeframes):
                candle_budget -= len(self.strategy.timeframes)
                reason = await self._exit_signal(symbol, price)
                if reason:
                    await self._exit(symbol, price, reason, Purpose.EXIT)

    def _exit_resting(self, symbol: str) -> bool:
        """An exit of the bot's own (not a guard) rests or is on its way for `symbol`."""
        return any(t.purpose != Purpose.GUARD for t in self.parts.book.open_orders(symbol=symbol))

    async def _exit_signal(self, symbol: str, price: float) -> str | None:
        try:
            candles = await self.scanner.candles_for(symbol)
        except Recoverable as fault:
            self.parts.log.info("no exit check for %s this cycle: %s", symbol, fault.kind)
            return None
        return self.strategy.exit(self.parts.book.positions[symbol], candles, price)

    async def _exit(self, symbol: str, price: float, reason: str, purpose: Purpose) -> Placement:
        p = self.parts
        position = p.book.positions[symbol]
        intent = OrderIntent(symbol, Side.SELL, position.amount, price, purpose)
        placement = await p.router.place(intent, reason=reason)
        if not placement.ok and placement.refused and symbol in p.book.positions:
            market = p.connector.markets.get(symbol)
            if is_dust(market, p.book.positions[symbol].amount, price):
                p.book.close(symbol, price, f"{reason} (dust left)")
            else:
                p.log.info("exit %s refused: %s", symbol, placement.refused)
        return placement

    async def _enter(self, symbol: str, ticker: Ticker, signal) -> None:
        p = self.parts
        market = p.connector.markets.get(symbol)
        if market is None:
            return
        amount = entry_amount(p.settings.stake_amount, ticker.ask, market)
        intent = OrderIntent(symbol, Side.BUY, amount, ticker.ask, Purpose.ENTRY)
        placement = await p.router.place(
            intent,
            reason=signal.reason,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
        )
        if placement.refused:
            p.log.debug("entry %s refused: %s", symbol, placement.refused)
        elif placement.ok and symbol in p.book.positions:
            # Its stop goes out next, before any other request: a host dying after the fill
            # leaves this position bare for one request, not for the rest of the cycle.
            await p.guards.ensure([symbol])
