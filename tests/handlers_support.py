"""Shared pieces for the command tests: a desk of paper accounts behind the real Dispatcher."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from chatbot.notifier import Notifier
from chatbot.senders import ConsoleSender
from handlers.context import Context
from handlers.dispatch import Dispatcher
from handlers.reply import Reply
from sim.clock import FakeClock
from sim.faults import FaultyPaper
from tests.engine_support import SETTINGS, Rig, ScriptedStrategy, make_rig
from trading.clock import Clock
from trading.desk import Desk
from trading.events import Event
from trading.recorder import MarketRecorder
from trading.settings import TradingSettings
from trading.store import Store
from trading.venues.paper import PaperExchange

VERSIONS = {"python": "3.11", "python-telegram-bot": "22.8", "ccxt": "4.5.90"}


@dataclass
class Office:
    """Paper accounts on one store and clock, their desk, and the dispatcher in front."""

    clock: Clock
    store: Store
    rigs: list[Rig]
    desk: Desk
    ctx: Context
    dispatcher: Dispatcher
    notifier: Notifier
    events: list[Event] = field(default_factory=list)
    aborted: list[bool] = field(default_factory=list)

    @property
    def rig(self) -> Rig:
        return self.rigs[0]

    async def run(self, text: str, who: str = "tester") -> Reply:
        return await self.dispatcher.handle(text, who)

    async def confirm(self, text: str, who: str = "tester") -> Reply:
        ask = await self.dispatcher.handle(text, who)
        assert ask.buttons, ask.text
        return await self.dispatcher.press(ask.buttons[0].data, who)

    async def start(self) -> None:
        for rig in self.rigs:
            await rig.trader.start()

    async def enter(self, rig: Rig, symbols: Sequence[str]) -> None:
        """Have the scripted strategy open positions in `symbols` on `rig`."""
        rig.strategy.entries = list(symbols)
        await rig.cycles(2)
        rig.strategy.entries = []
        assert set(symbols) <= set(rig.trader.book.positions)

    async def close(self) -> None:
        for rig in self.rigs:
            await rig.trader.close()
        self.store.close()


class _Tee(list):
    """The events a test reads, each handed to the notifier as well."""

    def __init__(self, notifier: Notifier) -> None:
        super().__init__()
        self._notifier = notifier

    def append(self, event: Event) -> None:
        super().append(event)
        self._notifier.notify(event)


def make_office(
    clock: Clock,
    accounts: Sequence[str] = ("MAIN",),
    *,
    settings: TradingSettings = SETTINGS,
    names: Sequence[str] | None = None,
    jobs: Callable[[], list[tuple[str, float | None]]] | None = None,
    redacted: dict | None = None,
    markets: int = 12,
    venue: type[PaperExchange] = FaultyPaper,
    notifier: Notifier | None = None,
    recorder: Callable[[Store], MarketRecorder] | None = None,
) -> Office:
    """With a `notifier`, the traders' events reach it too (as in the app), not only the list;
    with a `recorder` (built on the office's store), /record works and the scanners tap it."""
    store = Store(":memory:")
    market = recorder(store) if recorder is not None else None
    events: list[Event] = _Tee(notifier) if notifier is not None else []
    notifier = notifier or Notifier([ConsoleSender(io.StringIO())], clock=clock)
    rigs = []
    for i, account in enumerate(accounts):
        name = names[i] if names else "paper"
        paper = venue(clock=clock, name=name, account=account, markets=markets)
        rigs.append(
            make_rig(
                clock,
                strategy=ScriptedStrategy(),
                settings=settings,
                store=store,
                paper=paper,
                events=events,
                tap=market.tap(name) if market is not None else None,
            )
        )
    desk = Desk([r.trader for r in rigs], store=store, clock=clock)
    ctx = Context(
        desk=desk,
        clock=clock,
        notifier=notifier,
        settings=redacted if redacted is not None else {"telegram": {"token": "***"}},
        jobs=jobs,
        versions=VERSIONS,
        recorder=market,
    )
    office = Office(clock, store, rigs, desk, ctx, Dispatcher(ctx), notifier, events)
    ctx.abort = lambda: office.aborted.append(True)
    return office


@pytest.fixture(name="office")
async def office_fixture():
    """One paper account behind the real dispatcher, started and closed around a test."""
    o = make_office(FakeClock())
    await o.start()
    yield o
    await o.close()


@pytest.fixture(name="pair")
async def pair_fixture():
    """Two accounts on two exchanges: paper:main and kraken:master (both paper underneath)."""
    o = make_office(FakeClock(), ("MAIN", "MASTER"), names=("paper", "kraken"))
    await o.start()
    yield o
    await o.close()
