"""The trading core's own settings. `chatbot/config.py` fills them from the environment and
passes them down; the core never reads the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PaperSettings:
    markets: int = 50
    seed: int = 1
    balance: float = 10_000.0
    speed: float = 300.0  # simulated seconds per real second in `python -m chatbot`
    fee_rate: float = 0.001
    reset: bool = False  # start every paper and dry-run account afresh at start (PAPER_RESET)


@dataclass(frozen=True)
class TradingSettings:
    quote: str = "USDT"
    stake_amount: float = 100.0
    max_positions: int = 8
    max_exposure: float = 0.8  # fraction of equity held in positions
    min_balance: float = 10.0  # no entries below this free quote balance
    min_quote_volume: float = 100_000.0  # 24 h, for the scanner's universe
    reentry_cooldown_seconds: float = 1800.0
    loop_guard_round_trips: int = 3
    loop_guard_window_seconds: float = 3600.0
    strategy: str = "trend"
    strategy_dir: Path | None = None  # the user's strategy modules (STRATEGY_DIR)
    strategy_params: tuple[tuple[str, object], ...] = ()  # validated STRATEGY_PARAMS
    scan_interval_seconds: float = 60.0
    sync_interval_seconds: float = 120.0
    sync_failure_limit_seconds: float = 300.0
    stop_exit_timeout_seconds: float = 300.0
    failsafe_on_fatal: str = "flatten"  # or "stop"
    cancel_all_after_seconds: float = 180.0
    recv_window_ms: int = 10_000
    stop_limit_gap_pct: float = 2.0  # a resting stop-limit's limit, below its trigger
    trailing_stop_pct: float = 0.0  # 0: off
    break_even_at_pct: float = 0.0  # 0: off
    manual_stop_loss_pct: float = 5.0
    manual_take_profit_pct: float = 10.0
    # A limit entry still resting this long (on the market's clock) is cancelled by the cycle.
    entry_order_timeout_seconds: float = 900.0
    # "auto": the exchange's event feed where it has one (chatbot/config.py's default);
    # "off": REST polling only, which the core assumes unless told.
    event_feed: str = "off"
