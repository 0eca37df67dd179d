"""What keeping the paper account on disk costs the demo: its cycle with the account in memory
and kept in DATA_DIR/paper (trading/venues/paper_state.py), side by side.

    python bench/paper_state.py [--cycles 300] [--markets 50]

The demo's paper account (the trend strategy, PAPER_SPEED 300: one cycle per real second is
300 s of paper time) runs `cycles` cycles on a FakeClock against a store on disk. It prints the
wall time per cycle, the saves (one per call that changed the account) and what one costs.
The engine's own store writes every cycle, kept or not, so the difference is the saving.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.clock import FakeClock
from trading.connector import Connector
from trading.engine import Trader
from trading.events import discard
from trading.settings import TradingSettings
from trading.store import Store
from trading.strategies import load_strategy
from trading.venues.paper import PaperExchange
from trading.venues.paper_state import PaperState, state_path

PAPER_SECONDS_PER_CYCLE = 300.0


class Timed(PaperState):
    """A PaperState that counts its saves and the time they take."""

    saves = 0
    seconds = 0.0

    def save(self, head, orders) -> None:
        started = time.perf_counter()
        super().save(head, orders)
        self.seconds += time.perf_counter() - started
        self.saves += 1


async def _run(kept: bool, cycles: int, markets: int) -> tuple:
    with tempfile.TemporaryDirectory() as data_dir:
        clock = FakeClock()
        state = Timed(state_path(data_dir, "paper", "MAIN")) if kept else None
        paper = PaperExchange(clock=clock, markets=markets, state=state)
        store = Store.in_dir(Path(data_dir))
        trader = Trader(
            Connector(paper, clock=clock),
            store=store,
            strategy=load_strategy("trend"),
            settings=TradingSettings(),
            clock=clock,
            notify=discard,
        )
        await trader.start()
        started = time.perf_counter()
        for _ in range(cycles):
            await trader.run_cycle()
            clock.advance(PAPER_SECONDS_PER_CYCLE)
        per_cycle = (time.perf_counter() - started) / cycles
        orders = len(paper.order_log)
        store.close()
        await paper.close()
        if state is None:
            return per_cycle, orders, 0, 0.0
        return per_cycle, orders, state.saves, state.seconds / max(1, state.saves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--markets", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.cycles} cycles, {args.markets} markets")
    for kept in (False, True, False, True):  # twice each: the first run warms caches up
        per_cycle, orders, saves, per_save = asyncio.run(
            _run(kept, args.cycles, args.markets)
        )
        where = "kept on disk" if kept else "in memory   "
        print(
            f"{where}: {per_cycle * 1000:6.2f} ms/cycle, {orders} orders, "
            f"{saves} saves at {per_save * 1000:.2f} ms each"
        )


if __name__ == "__main__":
    main()
