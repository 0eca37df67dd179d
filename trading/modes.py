"""The mode table: what each trader mode lets out, and where each command leads.

Written once and read by everyone: the risk gate asks `allows()` for every order, the trader
asks `after()` for every command, the cycle asks `checks_protection()` and `flattens()`, and the
chaos referee judges orders by the same `allows()`. Four copies of this knowledge drifted before
(a pause inside a stop lost the stop); there is one now.

    mode        entries  signal  guard  protect  manual sell  stop  kill  failsafe
    RUNNING     yes      yes     yes    yes      yes          -     yes   -
    PAUSED      -        -       yes    yes      yes          -     yes   -
    HANDS_OFF   -        -       -      -        yes          -     yes   -
    STOPPING    -        -       yes    yes      yes          yes   yes   -
    STOPPED     -        -       yes    yes      yes          -     yes   -
    KILLED      -        -       yes    yes      yes          -     yes   yes
    FAILSAFE    -        -       yes    yes      yes          -     yes   yes
    HALTED      -        -       yes    yes      yes          -     yes   -

"guard" is the stop order resting at the exchange for a position (it outlives the process);
"protect" is a stop-loss or take-profit exit the bot sends itself. A plain /pause never disarms
either, nor does a halt (positions are left to their stops); only the owner's explicit
hands-off pause does. Where the bot exits a position itself (a stop, a kill, a failsafe) it
lifts that position's guard right before that position's exit order (one request without it),
and puts it back when the exit is refused, so a host dying mid-kill leaves nothing bare.

Commands (every mode has a way out; /pause, /stop, /kill and /resume are taken everywhere):

    /pause            any -> PAUSED, remembering the mode it interrupted (a pause inside a stop,
                      a kill or a failsafe stops the exits; positions keep their protection)
    /pause hands-off  any -> HANDS_OFF, the same but without protection: nothing is sold
    /unpause          PAUSED | HANDS_OFF -> the interrupted mode (back to the stop, ...)
    /stop             any -> STOPPING (STOPPED once every position is exited)
    /kill             any -> KILLED
    /resume           any -> RUNNING (the reply's confirmation names what is unresolved)
"""

from __future__ import annotations

from enum import StrEnum

from trading.models import Side


class Mode(StrEnum):
    """A trader's state. Only RUNNING enters positions."""

    RUNNING = "running"
    PAUSED = "paused"  # no entries, no strategy exits; protection stays armed
    HANDS_OFF = "hands-off"  # the owner's: nothing at all is sold, protection off
    STOPPING = "stopping"  # exiting every position with limit orders, then STOPPED
    STOPPED = "stopped"
    KILLED = "killed"  # flattened at market on command
    FAILSAFE = "failsafe"  # flattened by the dead switch (a bug or a persistent Fatal fault)
    HALTED = "halted"  # a Fatal fault with FAILSAFE_ON_FATAL=stop: no entries, waiting


class Purpose(StrEnum):
    """Why an order goes out. The value is what the store records for it."""

    ENTRY = "entry"  # the strategy buys
    EXIT = "exit"  # the strategy's exit signal sells
    GUARD = "guard"  # the protective stop resting at the exchange
    PROTECT = "protect"  # a stop-loss or take-profit triggered
    MANUAL = "manual"  # /buy and /sell
    STOP = "stop"  # the limit exits of /stop
    KILL = "kill"  # the market exits of /kill
    FAILSAFE = "failsafe"  # the market exits of the dead switch


class Command(StrEnum):
    PAUSE = "pause"
    HANDS_OFF = "pause hands-off"
    UNPAUSE = "unpause"
    STOP = "stop"
    KILL = "kill"
    RESUME = "resume"


_EXITS_EVERYWHERE = frozenset({Purpose.MANUAL, Purpose.KILL})
_PROTECTED = frozenset({Purpose.PROTECT}) | _EXITS_EVERYWHERE

_GUARDED = _PROTECTED | {Purpose.GUARD}

# Sells each mode lets out, by purpose.
SELLS: dict[Mode, frozenset[Purpose]] = {
    Mode.RUNNING: _GUARDED | {Purpose.EXIT},
    Mode.PAUSED: _GUARDED,
    Mode.HANDS_OFF: _EXITS_EVERYWHERE,
    Mode.STOPPING: _GUARDED | {Purpose.STOP},
    Mode.STOPPED: _GUARDED,
    Mode.KILLED: _GUARDED | {Purpose.FAILSAFE},
    Mode.FAILSAFE: _GUARDED | {Purpose.FAILSAFE},
    Mode.HALTED: _GUARDED,
}
# Buys each mode lets out: the strategy's and the owner's, only while running.
BUYS: dict[Mode, frozenset[Purpose]] = {
    mode: frozenset({Purpose.ENTRY, Purpose.MANUAL}) if mode is Mode.RUNNING else frozenset()
    for mode in Mode
}

# The modes a trader flattens in: market exits, retried until flat.
FLATTENING = frozenset({Mode.KILLED, Mode.FAILSAFE})
PAUSES = frozenset({Mode.PAUSED, Mode.HANDS_OFF})


def allows(mode: Mode, side: Side, purpose: Purpose) -> bool:
    """May an order of this side and purpose go out in this mode?"""
    table = BUYS if side is Side.BUY else SELLS
    return purpose in table[mode]


def checks_protection(mode: Mode) -> bool:
    """Does the cycle check stop-losses and take-profits in this mode?"""
    return Purpose.PROTECT in SELLS[mode]


def guards(mode: Mode) -> bool:
    """Does a position keep (or get) its stop resting at the exchange in this mode?"""
    return Purpose.GUARD in SELLS[mode]


def exit_reason(purpose: str) -> str:
    """How an exit is named when nothing more precise was recorded (after a restart)."""
    return "stop-loss (on exchange)" if purpose == Purpose.GUARD else purpose


def flattens(mode: Mode) -> bool:
    return mode in FLATTENING


def after(command: Command, mode: Mode, *, paused_from: Mode | None = None) -> Mode | str:
    """The mode a command leads to from `mode`, or why it changes nothing (a refusal text:
    a plain str, never a Mode; test with isinstance(result, Mode), since a Mode is a str too).
    `paused_from` is the mode a pause interrupted (for /unpause)."""
    if command is Command.PAUSE:
        return Mode.PAUSED
    if command is Command.HANDS_OFF:
        return Mode.HANDS_OFF
    if command is Command.UNPAUSE:
        if mode not in PAUSES:
            return f"trader is {mode}, not paused"
        return paused_from if paused_from is not None and paused_from not in PAUSES else (
            Mode.RUNNING
        )
    if command is Command.STOP:
        return Mode.STOPPING
    if command is Command.KILL:
        return Mode.KILLED
    if command is Command.RESUME:
        if mode is Mode.RUNNING:
            return "trader is already running"
        return Mode.RUNNING
    raise ValueError(f"unknown command {command!r}")

