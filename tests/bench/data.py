"""Benchmark inputs, the parse-and-hash baseline, and pre-filled ledgers.

Inputs are generated at run time into a temporary directory (never committed). Records are
external_text transcripts whose text length is log-uniform between 200 B and 20 KB (median
about 2 KB, mean about 4.3 KB); 80% of texts are ASCII, 15% carry Latin-1 accents and 5%
CJK and emoji, as exports from real call tools do. Everything is seeded, so two runs read
the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

from zsync.ledger import Ledger
from zsync.model import Intent, Outcome, Prepared, Record
from zsync.plan import skip
from zsync.plan.options import PlanOptions
from zsync.read import InputSpec, Source
from zsync.read.jsonl import parse_jsonl_line
from zsync.read.raw import jsonl_records
from zsync.shape.body import prepare
from zsync.shape.canonical import canonical_json, idempotency_key

SEED = 20_260_101
MIN_TEXT = 200
MAX_TEXT = 20_000

_VOCABULARY = (
    "the customer said export button times out again when we open the dashboard after "
    "billing invoice onboarding pricing latency support ticket call transcript we need a "
    "fix before renewal and it is blocking the team that owns reporting"
)
_LATIN1 = ("café", "naïve", "résumé", "über", "señor", "façade", "crème")
_WIDE = ("日本語", "対応", "😀", "👍", "naïve", "データ")


def _corpus(rng: random.Random, extra: tuple[str, ...], turns: int = 12_000) -> str:
    """A call transcript: speaker turns on their own lines, now and then a quoted word."""
    words = [*_VOCABULARY.split(), *extra]
    lines = []
    for turn in range(turns):
        said = [rng.choice(words) for _ in range(rng.randint(4, 18))]
        if rng.random() < 0.2:
            k = rng.randrange(len(said))
            said[k] = f'"{said[k]}"'
        speaker = "Agent" if turn % 2 else "Customer"
        lines.append(f"{speaker}: {' '.join(said).capitalize()}.")
    return "\n".join(lines)


def write_jsonl(path: Path, count: int, seed: int = SEED) -> int:
    """Write ``count`` records to ``path``; returns the file size in bytes."""
    rng = random.Random(seed)
    corpora = (_corpus(rng, []), _corpus(rng, _LATIN1), _corpus(rng, _WIDE))
    lo, hi = math.log(MIN_TEXT), math.log(MAX_TEXT)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        lines: list[str] = []
        for i in range(count):
            u = rng.random()
            corpus = corpora[0] if u < 0.80 else corpora[1] if u < 0.95 else corpora[2]
            size = int(math.exp(rng.uniform(lo, hi)))
            start = rng.randrange(0, len(corpus) - size)
            record: dict[str, object] = {
                "kind": "external_text",
                "externalId": f"bench-{i:07d}",
                "signalType": "transcript" if i % 4 else "support_ticket",
                "text": corpus[start : start + size],
                "occurredAt": f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            }
            if i % 2:
                record["name"] = f"Call {i}"
            if i % 3 == 0:
                record["accountId"] = f"acct-{i % 977}"
            lines.append(dumps(record))
            if len(lines) >= 1000:
                out.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            out.write("\n".join(lines) + "\n")
    return path.stat().st_size


def head(source: Path, dest: Path, count: int) -> None:
    """The first ``count`` lines of ``source`` (the smaller scenarios reuse the big input)."""
    with open(source, "rb") as src, open(dest, "wb") as out:
        for n, line in enumerate(src):
            if n >= count:
                break
            out.write(line)


def baseline(path: Path) -> float:
    """Seconds to parse every line and hash its canonical JSON: the floor for a no-op re-run."""
    started = time.perf_counter()
    loads = json.loads
    with open(path, "rb", buffering=1 << 16) as f:  # as zsync reads it
        for line in f:
            # Decoding first is faster than json.loads(bytes), which decodes via the slow
            # 'surrogatepass' error handler; zsync's reader decodes first too.
            hashlib.sha256(canonical_json(loads(line.decode("utf-8")))).hexdigest()
    return time.perf_counter() - started


def fill_ledgers(source: Path, targets: list[tuple[Path, int]]) -> None:
    """Record every record of ``source`` as processed, as a push that finished would have.

    Each target ledger gets the first ``n`` records. Rows are written through zsync's own
    Ledger API (record_intents, then apply_outcomes with status processed), with the payload
    hash, idempotency key and line hash that a push computes for the record, so a push of
    the same file finds every record unchanged. The body is not stored: a processed item's
    body is dropped by apply_outcomes anyway.
    """
    ledgers = []
    for path, limit in targets:
        ledger = Ledger.open(path)
        run_id = ledger.runs.start("bench-fill", {"source": source.name})
        ledgers.append([ledger, limit, run_id, 0])
    intents: list[Intent] = []

    def flush() -> None:
        for entry in ledgers:
            ledger, limit, run_id, written = entry
            mine = intents[: max(0, limit - written)]
            if not mine:
                continue
            ledger.items.record_intents(mine, run_id)
            ledger.items.apply_outcomes([processed(i.external_id) for i in mine], run_id)
            entry[3] = written + len(mine)

    spec = InputSpec((str(source),))
    cut = skip.hashed(PlanOptions(source=spec), Source(spec, str(source)))
    assert cut is not None
    try:
        for line in jsonl_records(str(source)):
            raw = bytes(line.raw)
            item = parse_jsonl_line(line.origin, raw)
            assert isinstance(item, Record), item
            prepared = prepare(item)
            assert isinstance(prepared, Prepared), prepared
            intents.append(
                Intent(
                    prepared.external_id,
                    prepared.payload_hash,
                    "",
                    idempotency_key(prepared.canonical),
                    prepared.origin,
                    raw_hash=cut.digest(raw),  # as a push through zsync records it
                    source=f"file:{source.resolve()}",  # likewise: the input it came from
                )
            )
            if len(intents) >= 5000:
                flush()
                intents = []
        flush()
        for ledger, _limit, run_id, written in ledgers:
            ledger.runs.finish(run_id, {"processed": written}, 0)
    finally:
        for ledger, *_rest in ledgers:
            ledger.close()


def processed(external_id: str) -> Outcome:
    return Outcome(
        external_id,
        "processed",
        status="processed",
        http_status=200,
        public_id=f"SIGNAL-{external_id}",
        job_id=f"job-{external_id}",
        attempts=1,
    )


if __name__ == "__main__":  # python -m tests.bench.data FILE: time the baseline alone
    print(f"{baseline(Path(sys.argv[1])):.3f}")
