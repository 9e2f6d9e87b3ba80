"""B3's other inputs: the same records as a CSV file with a mapping, and as a JSON array.

The no-op re-run of each is measured like B3's JSONL: a ledger that already holds every
record (written here through zsync's own planner, so each record's raw hash is the one a
push records), then ``zsync push`` of the unchanged file, which must find every record
unchanged and send nothing.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests.bench import data, harness
from tests.bench.common import Inputs, Row, fresh, miss
from zsync import plan, shape
from zsync.ledger import Ledger
from zsync.model import Intent, Prepared, RunResult
from zsync.plan.options import PlanOptions
from zsync.plan.seen import Seen
from zsync.plan.stream import planned_stream
from zsync.read import InputSpec
from zsync.read.raw import jsonl_records
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
        for k, line in enumerate(jsonl_records(str(source))):
            if k >= n:
                break
            record = json.loads(bytes(line.raw))
            writer.writerow([record.get(c, "") for c in COLUMNS])


def write_array(source: Path, target: Path, n: int) -> None:
    """A JSON array with one element per line, as exports usually write them."""
    with open(target, "wb") as out:
        out.write(b"[\n")
        for k, line in enumerate(jsonl_records(str(source))):
            if k >= n:
                break
            out.write((b",\n" if k else b"") + bytes(line.raw).rstrip(b"\r\n"))
        out.write(b"\n]\n")


def fill(path: Path, ledger_path: Path, mapping: Path | None) -> int:
    """Record every record of ``path`` as processed, with the raw hash a push records."""
    options = PlanOptions(source=InputSpec((str(path),)), mapping=str(mapping) if mapping else None)
    mappings = plan.check(options)
    ledger = Ledger.open(ledger_path)
    try:
        run_id = ledger.runs.start("bench-fill", {"source": path.name})
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
                    source=item.source,
                )
            )
            if len(intents) >= 5000:
                written += _flush(ledger, intents, run_id)
        written += _flush(ledger, intents, run_id)
        ledger.runs.finish(run_id, {"processed": written}, 0)
        return written
    finally:
        ledger.close()


def _flush(ledger: Ledger, intents: list[Intent], run_id: int) -> int:
    n = len(intents)
    ledger.items.record_intents(intents, run_id)
    ledger.items.apply_outcomes([data.processed(i.external_id) for i in intents], run_id)
    intents.clear()
    return n


def b3_rows(inputs: Inputs, records: int) -> list[Row]:
    """B3 for a CSV file with a mapping and for a JSON array: best of two no-op re-runs."""
    source = inputs.first(records)
    mapping = inputs.tmp / "b3-mapping.toml"
    mapping.write_text(MAPPING)
    files = {
        "CSV + mapping": (inputs.tmp / f"records-{records}.csv", write_csv, mapping),
        "JSON array": (inputs.tmp / f"records-{records}.json", write_array, None),
    }
    rows = []
    with harness.emulator() as emu:
        for label, (path, write, mapped) in files.items():
            if not path.exists():
                write(source, path, records)
            ledger = inputs.tmp / f"{path.name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{ledger}{suffix}").unlink(missing_ok=True)
            fill(path, ledger, mapped)
            runs = []
            for attempt in range(2):
                work = fresh(inputs.tmp, f"b3-{path.suffix[1:]}-{attempt}")
                shutil.copy(ledger, work / "l.db")
                args = ["push", "--input", str(path), "--json", "--ledger", "l.db"]
                args += ["--mapping", str(mapped)] if mapped else []
                run = harness.zsync(args, api_base=emu.api, cwd=work)
                if run.summary["counts"] != {"unchanged": records}:
                    raise RuntimeError(f"B3 {label}: {run.summary['counts']}")
                runs.append(run)
            if harness.creates(emu.state()):
                raise RuntimeError(f"B3 {label}: create requests on a no-op re-run")
            best = min(runs, key=lambda r: r.wall)
            per_s = records / best.wall
            rows.append(
                Row(
                    f"B3 no-op re-run: {label}",
                    records,
                    best.wall,
                    None,
                    None,
                    best.peak_rss_mb,
                    per_s / 50_000,
                    "records/s / 50,000",
                    ">= 50,000 records/s",
                    miss(per_s >= 50_000, f"{per_s:,.0f} records/s < 50,000"),
                    {
                        "records_per_s": round(per_s),
                        "input_mb": round(path.stat().st_size / 1e6, 1),
                        "best_of": 2,
                    },
                )
            )
    return rows
