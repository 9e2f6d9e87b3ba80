"""B3's other inputs: the same records as a CSV file with a mapping, and as a JSON array.

The no-op re-run of each is measured like B3's JSONL: a ledger that already holds every
record (written here through zsync's own planner, so each record's raw hash is the one a
push records), then ``zsync push`` of the unchanged file, which must find every record
unchanged and send nothing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.bench import data
from zsync import plan, shape
from zsync.ledger import Ledger
from zsync.model import Intent, Prepared, RunResult
from zsync.plan.options import PlanOptions
from zsync.plan.seen import Seen
from zsync.plan.stream import planned_stream
from zsync.read import InputSpec
from zsync.read.jsonl import jsonl_lines
from zsync.shape.canonical import idempotency_key

COLUMNS = ("externalId", "signalType", "text", "occurredAt", "name", "accountId")
MAPPING = """\
kind = "external_text"

[fields]
externalId = "{externalId}"
signalType = "{signalType}"
text = "{text}"
occurredAt = "{occurredAt}"
name = { field = "name", default = "Call" }
accountId = { field = "accountId", default = "none" }
"""


def write_csv(source: Path, target: Path, n: int) -> None:
    with open(target, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for k, (_, raw) in enumerate(jsonl_lines(str(source))):
            if k >= n:
                break
            record = json.loads(raw)
            writer.writerow([record.get(c, "") for c in COLUMNS])


def write_array(source: Path, target: Path, n: int) -> None:
    """A JSON array with one element per line, as exports usually write them."""
    with open(target, "wb") as out:
        out.write(b"[\n")
        for k, (_, raw) in enumerate(jsonl_lines(str(source))):
            if k >= n:
                break
            out.write((b",\n" if k else b"") + raw.rstrip(b"\r\n"))
        out.write(b"\n]\n")


def fill(path: Path, ledger_path: Path, mapping: Path | None) -> int:
    """Record every record of ``path`` as processed, with the raw hash a push records."""
    options = PlanOptions(source=InputSpec((str(path),)), mapping=str(mapping) if mapping else None)
    mappings = plan.check(options)
    ledger = Ledger.open(ledger_path)
    try:
        run_id = ledger.start_run("bench-fill", {"source": path.name})
        shaper = shape.Shaper(mappings, derive_external_id=False, warn=print)
        stream = planned_stream(
            ledger, options, shaper, RunResult("push"), Seen(), bookmark=None, warn=print
        )
        intents: list[Intent] = []
        written = 0
        for item in stream:
            assert isinstance(item, Prepared), item
            intents.append(
                Intent(
                    item.external_id,
                    item.payload_hash,
                    "",
                    idempotency_key(item.canonical),
                    item.origin,
                    raw_hash=item.raw_hash,
                )
            )
            if len(intents) >= 5000:
                written += _flush(ledger, intents, run_id)
        written += _flush(ledger, intents, run_id)
        ledger.finish_run(run_id, {"processed": written}, 0)
        return written
    finally:
        ledger.close()


def _flush(ledger: Ledger, intents: list[Intent], run_id: int) -> int:
    n = len(intents)
    ledger.record_intents(intents, run_id)
    ledger.apply_outcomes([data.processed(i.external_id) for i in intents], run_id)
    intents.clear()
    return n
