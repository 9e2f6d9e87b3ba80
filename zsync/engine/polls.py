"""When to poll a signal: around the time this run has seen processing take.

Signals created within the same second form a cohort. Only its first signal, the scout, is
polled on a probing schedule: at first ``first`` seconds after its create (or a little
before the processing time learned so far), then every 12% of its age (at least 0.25 s, at
most ``longest``), so a signal processed after 8 s is seen within about a second. When the
scout is settled at age A, every other member is polled once, A seconds after its own
create: one poll per signal is the common case, and a batch created together is polled
together. The scouts' ages when settled (the median of the last five) are the learned
processing time, so later scouts start just before it; a first poll that already finds the
signal settled counts as a shorter time still, so the estimate follows processing that got
faster as well as slower. A member not settled when polled backs off on its own (half its
age, at most ``longest``). Polls handed over without a create time (reconcile's, from the
ledger) double their interval as before.

Nothing here sends a request or touches the ledger: the engine asks what is due and tells
what a poll found.
"""

from __future__ import annotations

import heapq
import statistics
from collections import deque
from dataclasses import dataclass, field

from zsync.model import PollJob

# Signals created within this long of a cohort's first one join it.
COHORT_SECONDS = 1.0
# A scout's next poll comes this share of its age later (the lag once processing is done).
SCOUT_STEP = 0.12
SCOUT_MIN_GAP = 0.25
# The first poll of a scout comes this share of the learned processing time after its create.
SCOUT_LEAD = 0.85
# A cohort whose scout has not settled after this long is released to poll on its own.
RELEASE_AFTER = 60.0
# A signal polled on its own and not settled waits this share of its age until the next.
BACKOFF = 0.5
_SAMPLES = 5


@dataclass
class _Cohort:
    opened: float
    scout: str
    members: list[tuple[str, str, float]] = field(default_factory=list)  # (ext, public, created)


@dataclass(frozen=True, slots=True)
class _Watch:
    created: float | None  # None: unknown (a poll handed over by a feeder)
    cohort: _Cohort | None  # set for a cohort's scout
    polled: bool = False  # a scout polled before, and not settled then


class PollSchedule:
    """A heap of due polls plus the cohorts waiting for their scout."""

    def __init__(self, *, first: float = 0.5, longest: float = 6.0) -> None:
        self.first = first
        self.longest = max(longest, SCOUT_MIN_GAP)
        self._heap: list[tuple[float, int, PollJob]] = []
        self._seq = 0
        self._watch: dict[str, _Watch] = {}
        self._open: _Cohort | None = None
        self._waiting = 0  # cohort members not in the heap yet
        self._settled: deque[float] = deque(maxlen=_SAMPLES)

    def __len__(self) -> int:
        return len(self._heap) + self._waiting

    @property
    def estimate(self) -> float | None:
        """The processing time learned so far (seconds), or None before any scout settled."""
        return statistics.median(self._settled) if self._settled else None

    def next_due(self) -> float | None:
        """When the next poll is due (monotonic seconds); None when none is queued."""
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        """Forget every queued poll (the poll budget is spent)."""
        self._heap.clear()
        self._watch.clear()
        self._open = None
        self._waiting = 0

    # -- adding ------------------------------------------------------------------------

    def created(self, external_id: str, public_id: str, now: float) -> None:
        """A signal whose processing was queued ``now`` (a create, an update, a re-queue)."""
        cohort = self._open
        if cohort is not None and now - cohort.opened < COHORT_SECONDS:
            cohort.members.append((external_id, public_id, now))
            self._waiting += 1
            return
        cohort = _Cohort(now, external_id)
        self._open = cohort
        self._watch[external_id] = _Watch(now, cohort)
        estimate = self.estimate
        delay = self.first if estimate is None else max(SCOUT_MIN_GAP, SCOUT_LEAD * estimate)
        self._push(PollJob(external_id, public_id, delay), now + delay)

    def add(self, job: PollJob, due: float) -> None:
        """A poll whose signal's create time is unknown: ``job.interval`` doubles."""
        self._watch.pop(job.external_id, None)
        self._push(job, due)

    def _push(self, job: PollJob, due: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, job))

    # -- taking and hearing back -------------------------------------------------------

    def pop_due(self, now: float) -> PollJob | None:
        """The next poll due by ``now``, taken off the queue; None when none is."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None

    def seen(self, job: PollJob, settled: bool, now: float) -> None:
        """What a poll of ``job`` found: ``settled`` (processed, failed or gone) or not yet."""
        watch = self._watch.pop(job.external_id, None) if settled else None
        if settled:
            if watch is not None and watch.cohort is not None and watch.created is not None:
                age = now - watch.created
                # Settled at the first poll: processing took less, perhaps much less; aim
                # the next scout earlier still.
                self._settled.append(age if watch.polled else age * SCOUT_LEAD)
                self._release(watch.cohort, age)
            return
        watch = self._watch.get(job.external_id)
        if watch is None or watch.created is None:
            # Doubling from at least the first interval: a poll handed over due at once
            # (interval 0, as follow-ups are) must not come back at once, again and again.
            interval = min(max(job.interval * 2, self.first), self.longest)
            self._push(PollJob(job.external_id, job.public_id, interval), now + interval)
            return
        age = now - watch.created
        if watch.cohort is not None:
            if age >= RELEASE_AFTER:
                self._release(watch.cohort, age)
                self._watch[job.external_id] = _Watch(watch.created, None)
            else:
                self._watch[job.external_id] = _Watch(watch.created, watch.cohort, True)
                gap = min(self.longest, max(SCOUT_MIN_GAP, SCOUT_STEP * age))
                self._push(PollJob(job.external_id, job.public_id, gap), now + gap)
                return
        gap = min(self.longest, max(self.first, BACKOFF * age))
        self._push(PollJob(job.external_id, job.public_id, gap), now + gap)

    def _release(self, cohort: _Cohort, age: float) -> None:
        """Poll every other member at the age the scout was seen settled at."""
        if self._open is cohort:
            self._open = None
        for external_id, public_id, created in cohort.members:
            self._watch[external_id] = _Watch(created, None)
            self._push(PollJob(external_id, public_id, age), created + age)
        self._waiting -= len(cohort.members)
        cohort.members = []
