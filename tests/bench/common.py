"""What every benchmark scenario shares: the result row, the inputs, a fresh work directory."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import data


@dataclass
class Row:
    scenario: str
    records: int
    wall_s: float
    requests_per_s: float | None
    throttled_429: int | None
    peak_rss_mb: float
    ratio: float
    ratio_meaning: str
    target: str
    misses: list[str]  # each target missed, and by how much
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.misses

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "records_per_s": self.records / self.wall_s, "passed": self.passed}


def miss(ok: bool, text: str) -> list[str]:
    return [] if ok else [text]


@dataclass
class Inputs:
    tmp: Path
    big: Path
    count: int

    def first(self, n: int) -> Path:
        path = self.tmp / f"records-{n}.jsonl"
        if not path.exists():
            if n == self.count:
                return self.big
            data.head(self.big, path, n)
        return path


def fresh(tmp: Path, name: str) -> Path:
    work = tmp / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    return work


def check_once(state: dict[str, Any], n: int, what: str) -> None:
    creates = state["creates_by_external_id"]
    twice = {k: v for k, v in creates.items() if v != 1}
    if len(creates) != n or twice:
        raise RuntimeError(f"{what}: {len(creates)} signals for {n} records; repeated: {twice}")
