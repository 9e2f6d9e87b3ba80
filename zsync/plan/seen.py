"""What this input held: externalIds seen (for duplicates within it, and for prune)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field


class IdSet:
    """A set of hash() values at 8 to 16 bytes each; a set of ints costs about 70.

    Open addressing with linear probing in an array that is at most half full. 0 marks an
    empty slot, so a hash of 0 is stored as 1 (one more way two ids can collide).
    """

    __slots__ = ("_mask", "_slots", "_used")

    def __init__(self) -> None:
        self._slots = array("q", [0]) * 1024
        self._mask = 1023
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        key = key or 1
        slots, mask = self._slots, self._mask
        i = key & mask
        while True:
            found = slots[i]
            if found == key:
                return True
            if not found:
                return False
            i = (i + 1) & mask

    def add(self, key: int) -> bool:
        """Add ``key``; False when it was there already."""
        key = key or 1
        slots, mask = self._slots, self._mask
        i = key & mask
        while True:
            found = slots[i]
            if found == key:
                return False
            if not found:
                break
            i = (i + 1) & mask
        slots[i] = key
        self._used += 1
        if self._used * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._slots = slots = array("q", [0]) * (2 * len(old))
        self._mask = mask = len(slots) - 1
        for key in old:
            if key:
                i = key & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = key


@dataclass
class Seen:
    """What this input contained, for duplicate detection and prune."""

    # hash() values, not ids: a million ids would not fit the memory target. A collision (64-bit
    # hashes, seeded anew each run) never deletes or loses a record: it can make prune keep one,
    # report one as a duplicate of another (not sent this run, exit 1), or leave an unconfirmed
    # intent to the next run's follow-up.
    ids: IdSet = field(default_factory=IdSet)
    # hash((externalId, payload hash)) of each first occurrence: a repeat with the same body
    # (a Singer tap is at-least-once) is recognised and skipped, not reported as a duplicate.
    # Filled only for Singer input, the one where repeats are allowed.
    bodies: IdSet = field(default_factory=IdSet)
    # externalId -> payload hash of its latest version, for ids this input had in more than
    # one version (Singer upserts): a repeat is of the latest, not of the first
    versions: dict[str, str] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)  # where this input's records came from
    unreadable: int = 0  # records whose externalId could not be read: prune must not run
