"""One change of the book at a time: whole in the store and in memory, announced once committed.

A change's writes are one store transaction, so a crash (SIGKILL) leaves the store as it was
before the change or after it, never in between. If a change raises, the store rolls it back and
the book in memory returns to where it was, restored in place (callers hold the book's dicts and
Tracked objects across a change); what the change announces (a trade opened or closed) goes out
only once it is committed. A change made inside another joins it.

Apart from trading/book.py because this is how every change of the book is made, not what any
change does: the book says what a placement, a fill or a close writes; this makes each one whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from typing import Any

from trading.store import Store

# What a change may alter in memory: the book's dicts, and the dataclass objects inside them.
Kept = Callable[[], tuple[Iterable[dict], Iterable[Any]]]


class _Memory:
    """The book in memory before a change, to go back to if the store rolls the change back."""

    def __init__(self, dicts: Iterable[dict], objects: Iterable[Any]) -> None:
        self._dicts = [(live, dict(live)) for live in dicts]
        self._objects = [(o, replace(o)) for o in objects]

    def restore(self) -> None:
        for live, saved in self._dicts:
            live.clear()
            live.update(saved)
        for obj, saved in self._objects:
            for f in fields(obj):
                setattr(obj, f.name, getattr(saved, f.name))


class Changes:
    """Makes each change of one book whole; `kept` names what a rollback restores."""

    def __init__(self, store: Store, kept: Kept) -> None:
        self._store = store
        self._kept = kept
        self._changing = False
        self._announcements: list[Callable[[], None]] = []  # once the change is committed

    @contextmanager
    def change(self) -> Iterator[None]:
        """One change of the book: its writes are one store transaction, its announcements go
        out once that is committed, and if anything raises the book in memory goes back to what
        it was. A change made inside another joins it."""
        if self._changing:
            yield
            return
        before = _Memory(*self._kept())
        self._changing = True
        try:
            with self._store.transaction():
                yield
        except BaseException:
            before.restore()
            self._announcements.clear()
            raise
        finally:
            self._changing = False
        announcements, self._announcements = self._announcements, []
        for announce in announcements:
            announce()

    def announce(self, announcement: Callable[[], None]) -> None:
        """Run `announcement` once the change under way is committed."""
        self._announcements.append(announcement)
