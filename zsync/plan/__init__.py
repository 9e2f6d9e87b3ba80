"""Stage 3, plan: read -> shape -> diff against the ledger -> jobs, intents committed first.

``options`` (what a push is asked, and its refusals), ``stream`` (read and shape, with the
byte-level skip path of ``skip``, whose first file may be read ahead while the ledger is
checked), ``seen`` (ids in this input), ``decide`` (the diff of one record),
``push`` (the batch loop that commits intents and saves bookmarks), ``prune``, ``bookmark``,
and ``followup`` (jobs read from the ledger for reconcile and retry-failed).
"""

from __future__ import annotations

from zsync.plan.followup import ledger_feeder
from zsync.plan.options import ON_CHANGE, PlanOptions, check
from zsync.plan.push import push_feeder
from zsync.plan.skip import ReadAhead, read_ahead
from zsync.plan.stream import estimate_total
from zsync.shape import MappingFile

__all__ = [
    "ON_CHANGE",
    "MappingFile",
    "PlanOptions",
    "ReadAhead",
    "check",
    "estimate_total",
    "ledger_feeder",
    "push_feeder",
    "read_ahead",
]
