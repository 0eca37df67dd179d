"""The owner's own hand on one trader: /sync, /buy, /sell, /ban, /unban, /bans, each returning
a result dataclass and never raising. Manual orders go through the same gate and router as the
strategy's; a /buy gets a stop-loss and a take-profit like any position, its stop resting at
the exchange at once, and the strategy never sells it on a signal. A ban stops entries in a
symbol; its position keeps its stop and target, and the loop guard bans a symbol that flips
too often.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from trading.errors import Fault
from trading.events import SymbolBanned
from trading.lock import Preempt, TraderBusy
from trading.manual_parts import part_to_sell
from trading.models import Order, OrderType, Side
from trading.modes import Mode, Purpose, allows, guards
from trading.orders import Placement
from trading.parts import Parts, describe
from trading.reconcile import Difference
from trading.results import BanResult, Lock, LocksResult, OrderResult, SyncResult
from trading.risk import Level, OrderIntent, entry_amount, loop_guard_trips, manual_levels
from trading.store import Ban


class ManualCommands:
    """What /sync, /buy, /sell and the bans do to one trader."""

    def __init__(
        self,
        parts: Parts,
        *,
        start: Callable[[], Awaitable[list[Difference]]],
        started: Callable[[], bool],
    ) -> None:
        self.parts = parts
        self._start = start
        self._started = started

    # -- sync and orders

    async def sync(self) -> SyncResult:
        """Reconcile with the exchange now; every difference found, as data."""
        p = self.parts

        def refuse(reason: str) -> SyncResult:
            return SyncResult(account=p.label, ok=False, mode=p.state.mode, reason=reason)

        async def body() -> SyncResult:
            try:
                differences = await (p.account.sync() if self._started() else self._start())
            except Fault as fault:
                return refuse(describe(fault))
            return SyncResult(
                account=p.label,
                ok=True,
                mode=p.state.mode,
                differences=tuple(differences),
                positions=len(p.book.positions),
                open_orders=len(p.book.orders),
            )

        return await p.locked(body, refuse)

    async def buy(
        self,
        symbol: str,
        quote_amount: float | None = None,
        *,
        stop: Level | None = None,
        target: Level | None = None,
        limit: float | None = None,
    ) -> OrderResult:
        """A manual entry through the risk gate (STAKE_AMOUNT when no amount), with the
        owner's stop-loss and take-profit, or the manual defaults: at market, or resting at a
        `limit` below the ask until it fills or ENTRY_ORDER_TIMEOUT_SECONDS expire it."""
        p = self.parts
        market = p.connector.markets.get(symbol)
        if market is None:
            return self._refuse(symbol, Side.BUY, f"unknown symbol {symbol}")
        stake = p.settings.stake_amount if quote_amount is None else quote_amount
        if not allows(p.state.mode, Side.BUY, Purpose.MANUAL):  # no request for a sure refusal
            return self._refuse(symbol, Side.BUY, f"trader is {p.state.mode}: no manual buy")

        async def body() -> OrderResult:
            try:
                await p.account.sync()
                ticker = (await p.connector.tickers([symbol]))[symbol]
            except Fault as fault:
                return self._refuse(symbol, Side.BUY, f"no fresh price: {describe(fault)}")
            except KeyError:
                return self._refuse(symbol, Side.BUY, "no fresh price: no ticker")
            p.account.tickers[symbol] = ticker
            if limit is not None and limit >= ticker.ask:
                # At or above the ask it would fill at once, at the ask: not what a limit means.
                return self._refuse(
                    symbol, Side.BUY, f"wrong side: a buy limit {limit:.8g} is not below the "
                    f"ask {ticker.ask:.8g}; /buy without limit= buys at market",
                )
            price = ticker.ask if limit is None else limit
            levels = manual_levels(price, stop, target, p.settings)
            if isinstance(levels, str):
                return self._refuse(symbol, Side.BUY, levels)
            amount = entry_amount(stake, price, market)
            intent = OrderIntent(symbol, Side.BUY, amount, price, Purpose.MANUAL)
            reason = "manual buy" if limit is None else "manual limit buy"
            placement = await self._place(intent, reason, levels, limit)
            if placement.ok and p.state.mode is Mode.RUNNING:
                await p.quietly(p.guards.ensure([symbol]))
            return self._result(placement, levels)

        return await p.locked(body, lambda why: self._refuse(symbol, Side.BUY, why))

    async def sell(
        self, symbol: str, amount: float | None = None, *, fraction: float | None = None
    ) -> OrderResult:
        """A manual exit at market of the bot's own position (never other holdings), whole or
        an `amount` (base) or `fraction` of it; allowed while paused: it is the owner's own
        exit. A part sold leaves the rest with its stop, resized at once where it rests."""
        p = self.parts

        def refuse(reason: str) -> OrderResult:
            return self._refuse(symbol, Side.SELL, reason)

        if symbol not in p.book.positions:
            return refuse(f"no position in {symbol} opened by the bot")

        async def body() -> OrderResult:
            try:
                await p.account.sync()
                await p.account.price_positions()
            except Fault as exc:
                return refuse(f"cannot sync: {describe(exc)}")
            if symbol not in p.book.positions:
                return refuse(f"{symbol} is no longer held")
            price = p.account.price(symbol)
            part = part_to_sell(
                p.book.positions[symbol].amount, amount, fraction, price, p.connector.markets
                .get(symbol)
            )
            if isinstance(part, str):
                return refuse(part)
            intent = OrderIntent(symbol, Side.SELL, part, price, Purpose.MANUAL)
            result = self._result(await self._place(intent, "manual sell"))
            if symbol in p.book.positions and guards(p.state.mode):
                await p.quietly(p.guards.ensure([symbol]))  # the rest keeps its stop
            return result

        return await p.locked(body, refuse)

    async def _place(
        self,
        intent: OrderIntent,
        reason: str,
        levels: tuple[float, float] | None = None,
        limit: float | None = None,
    ) -> Placement:
        stop_loss, take_profit = levels or (None, None)
        try:
            return await self.parts.router.place(
                intent,
                limit_price=limit,
                reason=reason,
                stop_loss=stop_loss,
                take_profit=take_profit,
            )
        except Fault as fault:  # a Fatal: told to the user, and the next cycle acts on it
            return Placement(intent.symbol, intent.side, fault=fault)

    # -- bans

    async def ban(self, symbol: str) -> BanResult:
        """Never enter `symbol`; an open position in it keeps its stop and target."""
        p = self.parts
        if symbol not in p.connector.markets:
            return self._refuse_ban(symbol, f"unknown symbol {symbol}")
        if symbol in p.store.bans(p.label):
            return self._refuse_ban(symbol, f"{symbol} is already banned")
        now = p.clock.time()
        p.store.ban(p.label, symbol, "banned by command", now)
        p.notify(SymbolBanned(account=p.label, at=now, symbol=symbol, reason="by command"))
        try:
            async with p.lock.exclusive(p.failsafe.lock_wait, preempt=Preempt.READS):
                for tracked in p.book.open_orders(symbol=symbol):
                    if tracked.side is Side.BUY:
                        await p.quietly(p.router.cancel(tracked))
        except TraderBusy:
            pass  # the gate refuses the symbol anyway; its entry order goes next cycle
        return BanResult(
            account=p.label, ok=True, mode=p.state.mode, symbol=symbol, bans=self.bans()
        )

    async def unban(self, symbol: str) -> BanResult:
        p = self.parts
        if not p.store.unban(p.label, symbol):
            return self._refuse_ban(symbol, f"{symbol} is not banned")
        return BanResult(
            account=p.label, ok=True, mode=p.state.mode, symbol=symbol, bans=self.bans()
        )

    def bans(self) -> tuple[Ban, ...]:
        return tuple(self.parts.store.bans(self.parts.label).values())

    def loop_guard(self, symbol: str) -> None:
        """Ban a symbol that made more than LOOP_GUARD_ROUND_TRIPS round trips in the window
        (on the market's clock, as the cooldown)."""
        p = self.parts
        window = p.settings.loop_guard_window_seconds
        exits = p.book.exits.get(symbol, ())
        trips = loop_guard_trips(exits, p.connector.market_time(), p.settings)
        if trips is None or symbol in p.store.bans(p.label):
            return
        reason = f"loop guard: {trips} round trips in {window / 60:.0f} min"
        now = p.clock.time()
        p.store.ban(p.label, symbol, reason, now, auto=True)
        p.log.warning("%s banned: %s", symbol, reason)
        p.notify(SymbolBanned(account=p.label, at=now, symbol=symbol, reason=reason))

    def locks(self) -> tuple[Lock, ...]:
        """Every re-entry cooldown still running and every loop-guard ban, with time left."""
        p = self.parts
        now = p.connector.market_time()
        cooldown = p.settings.reentry_cooldown_seconds
        found = [
            Lock(symbol, "cooldown", left, "re-entry cooldown after an exit")
            for symbol, at in sorted(p.book.last_exit_at.items())
            if (left := at + cooldown - now) > 0
        ]
        found += [
            Lock(ban.symbol, "auto-ban", None, ban.reason)
            for ban in self.bans()
            if ban.auto
        ]
        return tuple(found)

    def unlock(self, symbol: str) -> LocksResult:
        """Clear a symbol's cooldown and its loop-guard ban (a ban by command stays: /unban)."""
        p = self.parts
        cleared = []
        if symbol in {lock.symbol for lock in self.locks() if lock.kind == "cooldown"}:
            p.book.unlock(symbol)
            cleared.append("cooldown")
        ban = p.store.bans(p.label).get(symbol)
        if ban is not None and ban.auto:
            p.store.unban(p.label, symbol)
            cleared.append("auto-ban")
        ok = bool(cleared)
        reason = "" if ok else f"{symbol} has no cooldown or loop-guard ban"
        return LocksResult(
            account=p.label,
            ok=ok,
            mode=p.state.mode,
            reason=reason,
            symbol=symbol,
            cleared=tuple(cleared),
            locks=self.locks(),
        )

    # -- results

    def _refuse(self, symbol: str, side: Side, reason: str) -> OrderResult:
        p = self.parts
        return OrderResult(
            account=p.label,
            ok=False,
            mode=p.state.mode,
            symbol=symbol,
            side=str(side),
            reason=reason,
        )

    def _refuse_ban(self, symbol: str, reason: str) -> BanResult:
        p = self.parts
        return BanResult(
            account=p.label,
            ok=False,
            mode=p.state.mode,
            symbol=symbol,
            reason=reason,
            bans=self.bans(),
        )

    def _result(
        self, placement: Placement, levels: tuple[float, float] | None = None
    ) -> OrderResult:
        p = self.parts
        order = placement.order
        if order is None:
            return self._refuse(placement.symbol, placement.side, placement.reason)
        price = order.average or order.price or 0.0
        position = p.book.positions.get(placement.symbol)
        held = position is not None and placement.side is Side.BUY
        resting = order.remaining if order.is_open and order.type is OrderType.LIMIT else 0.0
        if resting and not held and levels is not None:
            return self._resting(placement, order, levels)
        return OrderResult(
            account=p.label,
            ok=True,
            mode=p.state.mode,
            symbol=placement.symbol,
            side=str(placement.side),
            amount=order.filled,
            price=price,
            cost=order.filled * price,
            order_id=order.id,
            closed=placement.closed[-1] if placement.closed else None,
            reason="" if not order.is_open else f"order {order.status}, {order.filled:g} filled",
            stop_loss=position.stop_loss if held else None,
            take_profit=position.take_profit if held else None,
            guard=p.guards.view(position).where if held else "none",
            resting=resting,
            limit_price=order.price if order.type is OrderType.LIMIT else None,
            left=position.amount if position is not None else 0.0,
        )

    def _resting(
        self, placement: Placement, order: Order, levels: tuple[float, float]
    ) -> OrderResult:
        """A limit buy resting unfilled: the levels its position will get once it fills."""
        p = self.parts
        return OrderResult(
            account=p.label,
            ok=True,
            mode=p.state.mode,
            symbol=placement.symbol,
            side=str(placement.side),
            order_id=order.id,
            stop_loss=levels[0],
            take_profit=levels[1],
            resting=order.remaining,
            limit_price=order.price,
        )
