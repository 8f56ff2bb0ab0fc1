"""What the store hands to the log and takes from it, without the database driver.

Kept apart from `store.py` so that reading and verifying a ledger (the core install, a bundle
offline) imports no SQLAlchemy until a database is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from clgate.ledger.merkle import Frontier


@dataclass
class Head:
    """The stored tree head: what the next append builds on."""

    size: int
    frontier: Frontier
    last_hash: bytes
    root: bytes


@dataclass(frozen=True)
class Prepared:
    """The bytes of one new entry, and the columns stored beside them for people querying the database
    (unsigned: clgate never decides anything by them)."""

    leaf: bytes
    entry_type: str
    signer: str
    timestamp: str


# Reads (index, bytes) of every entry from `start` on, inside the append's transaction.
EntryReader = Callable[[int], Iterable[tuple[int, bytes]]]
