"""The operations the commands call on a Trader, each returning a result dataclass.

A command that makes no sense in the current state returns a refusal (ok=False and a reason)
and changes nothing. Kill and pause change the mode first, so that a cycle still running
places nothing more, then take the trader's lock to act.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading.book import is_dust
from trading.errors import Fault
from trading.events import SymbolBanned
from trading.failsafe import TraderBusy
from trading.models import Side
from trading.modes import PAUSES, Mode, Purpose, after, allows, flattens
from trading.modes import Command as ModeCommand
from trading.orders import Placement
from trading.paper_reset import NOT_SIMULATED, refused, reset_account, resettable
from trading.results import (
    AbortResult,
    BanResult,
    InfoResult,
    KillResult,
    ModeResult,
    OrderResult,
    PositionView,
    ResetResult,
    SyncResult,
)
from trading.risk import OrderIntent, entry_amount, loop_guard_trips
from trading.store import Ban

if TYPE_CHECKING:
    from trading.engine import Trader

class TraderOperations:
    """Mixed into Trader: what /pause, /stop, /kill, /buy ... do, as data."""

    # -- modes (where each command leads: trading/modes.py)

    async def pause(self: Trader, *, hands_off: bool = False) -> ModeResult:
        """No entries, no strategy exits, no flattening; open orders cancelled. Positions keep
        their stop-loss and take-profit, unless `hands_off`: then nothing at all is sold."""
        old = self.mode
        new = after(ModeCommand.HANDS_OFF if hands_off else ModeCommand.PAUSE, old)
        assert isinstance(new, Mode)
        if new is old:
            return self._mode_result(old, reason=f"already {old}")
        if old not in PAUSES:
            self.store.set_meta(f"paused_from:{self.label}", str(old))
        self.set_mode(new, "hands-off pause command" if hands_off else "pause command")
        await self.close()  # a kill's or failsafe's flattening stops here
        try:
            async with self.exclusive(self.lock_wait, force=True):
                cancelled, failures = await self.router.cancel_all()
        except Fault as fault:  # what stays open is cancelled by the next (paused) cycle
            cancelled, failures = 0, [f"{fault.kind}: {fault.message}"]
        except Exception as exc:
            return await self._bug(exc, self._refuse_mode)
        return self._mode_result(old, cancelled=cancelled, reason="; ".join(failures))

    async def unpause(self: Trader) -> ModeResult:
        """Back to what the pause interrupted: running, or the stop, kill or failsafe."""
        old = self.mode
        saved = self.store.get_meta(f"paused_from:{self.label}")
        new = after(ModeCommand.UNPAUSE, old, paused_from=_mode_or_none(saved))
        if not isinstance(new, Mode):
            hint = " (use /resume)" if old is not Mode.RUNNING else ""
            return self._refuse_mode(new + hint)
        self.set_mode(new, "unpause command")
        return self._mode_result(old, exiting=self._exiting(new))

    async def stop(self: Trader) -> ModeResult:
        """No new entries; exit every position with limit orders at the touch, then STOPPED."""
        old = self.mode
        new = after(ModeCommand.STOP, old)
        assert isinstance(new, Mode)
        if old is Mode.STOPPING:
            held = len(self.book.positions)
            return self._mode_result(old, exiting=held, reason="already stopping")
        self.set_mode(new, "stop command")
        await self.close()  # a kill's or failsafe's flattening gives way to the stop
        try:
            async with self.exclusive(self.lock_wait, force=True):
                for tracked in self.book.open_orders():
                    if tracked.side is Side.BUY:
                        await self._quietly(self.router.cancel(tracked))
                await self._guarded(self._stop_cycle)
        except Exception as exc:
            return await self._bug(exc, self._refuse_mode)
        return self._mode_result(old, exiting=len(self.book.positions))

    async def resume(self: Trader) -> ModeResult:
        """Back to RUNNING from any mode. What was unresolved (positions a stop, kill or
        failsafe had not exited yet, open emergencies) is named in the confirmation the
        command asks for, and in the result: those positions are managed again."""
        old = self.mode
        new = after(ModeCommand.RESUME, old)
        if not isinstance(new, Mode):
            return self._refuse_mode(new)
        unresolved = self.unresolved()
        await self.close()
        self.set_mode(new, "resume command")
        for key in list(self._emergencies):
            self.clear_emergency(key, "resumed")
        return self._mode_result(old, reason="; ".join(unresolved))

    def unresolved(self: Trader) -> list[str]:
        """What a /resume would leave as it is: said before the owner confirms it."""
        notes: list[str] = []
        if self.mode is not Mode.RUNNING and self.book.positions:
            held = ", ".join(sorted(self.book.positions))
            notes.append(f"{self.mode}: still holding {held} (managed again, with their stops)")
        if self._emergencies:
            notes.append("open emergencies: " + ", ".join(sorted(self._emergencies)))
        caution = self.caution()
        if caution:
            notes.append(f"entries stay held: {caution}")
        failing = self.connector.health.sync_failing_since
        if failing is not None:
            seconds = self.clock.time() - failing
            notes.append(f"the account sync has been failing for {seconds:.0f} s")
        return notes

    async def kill(self: Trader) -> KillResult:
        """Cancel all orders, market-exit every position at once, confirm flat by a sync."""
        running = self._flattening is not None and not self._flattening.done()
        if self.mode is Mode.KILLED and not self.book.positions and not running:
            return KillResult(
                account=self.label,
                ok=False,
                mode=self.mode,
                reason="already killed",
                flat=True,
                left=tuple(self.leftovers()),
            )
        mark = self._closes
        self.set_mode(Mode.KILLED, "kill command")
        try:
            report = await self._flatten_now(Purpose.KILL)
        except Exception:
            self.log.exception("kill raised; flattening goes on in the background")
            self._keep_flattening(Purpose.KILL)
            return KillResult(
                account=self.label,
                ok=True,
                mode=self.mode,
                reason="internal error during the kill; retrying until flat",
                remaining=tuple(self.book.positions),
            )
        closed = tuple(self._closed_log[-(self._closes - mark) :]) if self._closes > mark else ()
        last = report.rounds[-1] if report.rounds else None
        return KillResult(
            account=self.label,
            ok=True,
            mode=self.mode,
            reason="" if report.flat else "not flat yet; retrying until flat",
            flat=report.flat,
            cancelled=sum(r.cancelled for r in report.rounds),
            closed=closed,
            remaining=report.remaining if last else tuple(self.book.positions),
            rounds=len(report.rounds),
            seconds=report.seconds,
            problems=report.problems[-10:],
            left=tuple(self.leftovers()),
        )

    def leftovers(self: Trader) -> list[str]:
        """Coins the account still holds that no position of the bot accounts for, and why
        they stay: the user's own (never the bot's to sell) or dust below the market minimum.
        A reply never says "flat" without naming them."""
        notes = []
        for symbol, market in sorted(self.connector.markets.items()):
            if symbol in self.book.positions or market.quote != self.settings.quote:
                continue
            amount = self.balance.total_of(market.base)
            if amount <= 0:
                continue
            if is_dust(market, amount, self.price(symbol) or 0.0):
                notes.append(f"{market.base} {amount:g}: dust below the market minimum")
            else:
                notes.append(f"{market.base} {amount:g}: not bought by the bot, left alone")
        return notes

    async def abort(self: Trader) -> AbortResult:
        """Stop trading at once, touching nothing; returns what stays open at the exchange."""
        self._aborted = True
        await self.close()
        return AbortResult(
            account=self.label,
            ok=True,
            mode=self.mode,
            positions=tuple(self.book.positions.values()),
            open_orders=tuple(t.order for t in self.book.orders.values()),
        )

    async def reset_paper(self: Trader) -> ResetResult:
        """Start a paper or dry-run account afresh (trading/paper_reset.py): the starting
        balance, no orders, the bot's book of it cleared without a trade. Refused for a live
        account."""
        if not resettable(self):
            return refused(self, NOT_SIMULATED)

        async def body() -> ResetResult:
            result = reset_account(self)
            try:
                await self._sync_now()  # the fresh balance, before anything reads the old one
            except Fault as fault:
                self.log.info("sync after the reset failed (the next cycle syncs): %s", fault)
            return result

        return await self._locked(body, lambda why: refused(self, why))

    # -- sync and orders

    async def sync(self: Trader) -> SyncResult:
        """Reconcile with the exchange now; every difference found, as data."""

        def refuse(reason: str) -> SyncResult:
            return SyncResult(account=self.label, ok=False, mode=self.mode, reason=reason)

        async def body() -> SyncResult:
            try:
                if self.started:
                    differences = await self._sync_now()
                else:
                    differences = await self._start_exchange()
            except Fault as fault:
                return refuse(_fault(fault))
            return SyncResult(
                account=self.label,
                ok=True,
                mode=self.mode,
                differences=tuple(differences),
                positions=len(self.book.positions),
                open_orders=len(self.book.orders),
            )

        return await self._locked(body, refuse)

    async def buy(self: Trader, symbol: str, quote_amount: float | None = None) -> OrderResult:
        """A manual entry at market through the risk gate (STAKE_AMOUNT when no amount)."""
        market = self.connector.markets.get(symbol)
        if market is None:
            return self._refuse_order(symbol, Side.BUY, f"unknown symbol {symbol}")
        stake = self.settings.stake_amount if quote_amount is None else quote_amount
        if not allows(self.mode, Side.BUY, Purpose.MANUAL):  # no request for a sure refusal
            return self._refuse_order(symbol, Side.BUY, f"trader is {self.mode}: no manual buy")

        async def body() -> OrderResult:
            try:
                await self._sync_now()
                ticker = (await self.connector.tickers([symbol]))[symbol]
            except Fault as fault:
                return self._refuse_order(symbol, Side.BUY, f"no fresh price: {_fault(fault)}")
            except KeyError:
                return self._refuse_order(symbol, Side.BUY, "no fresh price: no ticker")
            self.tickers[symbol] = ticker
            amount = entry_amount(stake, ticker.ask, market)
            intent = OrderIntent(symbol, Side.BUY, amount, ticker.ask, Purpose.MANUAL)
            return self._order_result(await self._place_or_refuse(intent, "manual buy"))

        return await self._locked(body, lambda why: self._refuse_order(symbol, Side.BUY, why))

    async def sell(self: Trader, symbol: str) -> OrderResult:
        """A manual exit at market of the bot's own position (never other holdings)."""

        def refuse(reason: str) -> OrderResult:
            return self._refuse_order(symbol, Side.SELL, reason)

        if symbol not in self.book.positions:
            return refuse(f"no position in {symbol} opened by the bot")

        async def body() -> OrderResult:
            try:
                await self._sync_now()
                await self._price_positions()
            except Fault as exc:
                return refuse(f"cannot sync: {_fault(exc)}")
            if symbol not in self.book.positions:
                return refuse(f"{symbol} is no longer held")
            amount = self.book.positions[symbol].amount
            intent = OrderIntent(symbol, Side.SELL, amount, self.price(symbol), Purpose.MANUAL)
            return self._order_result(await self._place_or_refuse(intent, "manual sell"))

        return await self._locked(body, refuse)

    async def _locked(self: Trader, body, refuse):
        """Run a command's body under the trader's lock. Busy: a refusal. A bug in order code:
        the dead switch, as in a cycle, and the user is told."""
        try:
            async with self.exclusive(self.lock_wait):
                return await body()
        except TraderBusy as busy:
            return refuse(str(busy))
        except Exception as exc:
            return await self._bug(exc, refuse)

    async def _bug(self: Trader, exc: Exception, refuse):
        """A bug in a command's order code: the dead switch, as in a cycle; the user is told."""
        await self._safely(self._dead_switch(exc))
        return refuse(f"internal error ({type(exc).__name__}); the trader is in failsafe")

    async def _place_or_refuse(self: Trader, intent: OrderIntent, reason: str) -> Placement:
        try:
            return await self.router.place(intent, reason=reason)
        except Fault as fault:  # a Fatal: told to the user, and the next cycle acts on it
            return Placement(intent.symbol, intent.side, fault=fault)

    # -- bans

    async def ban(self: Trader, symbol: str) -> BanResult:
        """Never enter `symbol`; an open position in it is left alone."""
        if not self.knows_symbol(symbol):
            return self._refuse_ban(symbol, f"unknown symbol {symbol}")
        if symbol in self.store.bans(self.label):
            return self._refuse_ban(symbol, f"{symbol} is already banned")
        now = self.clock.time()
        self.store.ban(self.label, symbol, "banned by command", now)
        self.notify(SymbolBanned(account=self.label, at=now, symbol=symbol, reason="by command"))
        try:
            async with self.exclusive(self.lock_wait):
                for tracked in self.book.open_orders(symbol=symbol):
                    if tracked.side is Side.BUY:
                        await self._quietly(self.router.cancel(tracked))
        except TraderBusy:
            pass  # the gate refuses the symbol anyway; its entry order goes next cycle
        return BanResult(
            account=self.label, ok=True, mode=self.mode, symbol=symbol, bans=self.bans()
        )

    async def unban(self: Trader, symbol: str) -> BanResult:
        if not self.store.unban(self.label, symbol):
            return self._refuse_ban(symbol, f"{symbol} is not banned")
        return BanResult(
            account=self.label, ok=True, mode=self.mode, symbol=symbol, bans=self.bans()
        )

    def bans(self: Trader) -> tuple[Ban, ...]:
        return tuple(self.store.bans(self.label).values())

    def loop_guard(self: Trader, symbol: str) -> None:
        """Ban a symbol that made more than LOOP_GUARD_ROUND_TRIPS round trips in the window."""
        now = self.clock.time()
        window = self.settings.loop_guard_window_seconds
        closes = [
            t.closed_at
            for t in self.store.trades(self.label, since=now - window)
            if t.symbol == symbol
        ]
        trips = loop_guard_trips(closes, now, self.settings)
        if trips is None or symbol in self.store.bans(self.label):
            return
        reason = f"loop guard: {trips} round trips in {window / 60:.0f} min"
        self.store.ban(self.label, symbol, reason, now, auto=True)
        self.log.warning("%s banned: %s", symbol, reason)
        self.notify(SymbolBanned(account=self.label, at=now, symbol=symbol, reason=reason))

    # -- views

    def knows_symbol(self: Trader, symbol: str) -> bool:
        return symbol in self.connector.markets

    def info(self: Trader) -> InfoResult:
        """Mode, balances, positions priced now, exposure, health, last cycle. No I/O."""
        equity, exposure = self.equity()
        bans = self.store.bans(self.label)
        views = []
        for p in self.book.positions.values():
            ticker = self.tickers.get(p.symbol)
            price = self.price(p.symbol) if ticker else None
            value = p.amount * (price if price is not None else p.entry_price)
            pnl = value - p.cost
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
                )
            )
        quote = self.settings.quote
        return InfoResult(
            account=self.label,
            ok=True,
            mode=self.mode,
            quote=quote,
            free_quote=self.book.free.get(quote, self.balance.free_of(quote)),
            total_quote=self.balance.total_of(quote),
            equity=equity,
            exposure=exposure / equity if equity > 0 else 0.0,
            positions=tuple(views),
            open_orders=len(self.book.orders),
            bans=len(bans),
            health=self.connector.health,
            started=self.started,
            last_cycle_at=self.last_cycle_at,
            last_cycle_seconds=self.last_cycle_seconds,
            last_sync_at=self.last_sync_at,
            last_error=self.last_error,
            balances={k: v for k, v in self.balance.total.items() if v},
        )

    # -- helpers

    async def _quietly(self: Trader, coro) -> None:
        try:
            await coro
        except Fault as fault:
            self.log.info("cancel failed: %s", _fault(fault))

    def _mode_result(
        self: Trader, old: Mode, *, cancelled: int = 0, exiting: int = 0, reason: str = ""
    ) -> ModeResult:
        return ModeResult(
            account=self.label,
            ok=True,
            mode=self.mode,
            old=old,
            cancelled=cancelled,
            exiting=exiting,
            reason=reason,
            positions=len(self.book.positions),
        )

    def _exiting(self: Trader, mode: Mode) -> int:
        return len(self.book.positions) if mode is Mode.STOPPING or flattens(mode) else 0

    def _refuse_mode(self: Trader, reason: str) -> ModeResult:
        return ModeResult(
            account=self.label, ok=False, mode=self.mode, old=self.mode, reason=reason
        )

    def _refuse_order(self: Trader, symbol: str, side: Side, reason: str) -> OrderResult:
        return OrderResult(
            account=self.label,
            ok=False,
            mode=self.mode,
            symbol=symbol,
            side=str(side),
            reason=reason,
        )

    def _refuse_ban(self: Trader, symbol: str, reason: str) -> BanResult:
        return BanResult(
            account=self.label,
            ok=False,
            mode=self.mode,
            symbol=symbol,
            reason=reason,
            bans=self.bans(),
        )

    def _order_result(self: Trader, placement: Placement) -> OrderResult:
        order = placement.order
        if order is None:
            return self._refuse_order(placement.symbol, placement.side, placement.reason)
        price = order.average or order.price or 0.0
        return OrderResult(
            account=self.label,
            ok=True,
            mode=self.mode,
            symbol=placement.symbol,
            side=str(placement.side),
            amount=order.filled,
            price=price,
            cost=order.filled * price,
            order_id=order.id,
            closed=placement.closed[-1] if placement.closed else None,
            reason="" if not order.is_open else f"order {order.status}, {order.filled:g} filled",
        )


def _fault(fault: Fault) -> str:
    return f"{fault.kind}: {fault.message}"


def _mode_or_none(saved: str | None) -> Mode | None:
    try:
        return Mode(saved) if saved else None
    except ValueError:
        return None
