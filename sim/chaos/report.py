"""What one seed of the chaos soak reports: its figures and every invariant it broke.

It stands apart from the referee (sim/chaos/referee.py) that fills it in, so that the bench
(bench/chaos.py), which only reads reports, does not depend on the Monitor.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SeedReport:
    """What one seed did and every invariant it broke."""

    seed: int
    cycles: int
    seconds: float
    violations: list[str]
    violation_counts: dict[str, int]
    planned: dict[str, int]  # fault scenarios planned, by name
    injected: dict[str, int]  # faults the chaos venue raised, by class
    natural: dict[str, int]  # faults the paper exchange raised itself (its rate limit...)
    commands: dict[str, int]
    via_table: dict[str, int]  # of those, run through the command table's handlers
    endings: dict[str, int] = field(default_factory=dict)  # restarts, crashes, shutdowns
    retryable: dict[str, int] = field(default_factory=dict)  # random retryable answers, by kind
    mode_commands: dict[str, int] = field(default_factory=dict)  # "pause@failsafe": answered
    stats: dict[str, int] = field(default_factory=dict)
    protection: dict[str, float] = field(default_factory=dict)  # position-seconds, by state
    longest_gap: tuple[float, str] = (0.0, "")  # seconds, cause
    digest: str = ""
