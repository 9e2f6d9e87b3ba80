"""The runs table: one row per run, its arguments, counts and exit code."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from zsync.ledger.table import Table, now_iso


class RunsTable(Table):
    """``ledger.runs``: one row per run, its arguments, counts and exit code."""

    def start(self, command: str, arguments: dict[str, Any]) -> int:
        """Record a run beginning (and name it in the lease row); its id."""
        with self._ledger.transaction():
            cur = self._conn.execute(
                "INSERT INTO runs (command, arguments, host, pid, started_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    command,
                    json.dumps(arguments, sort_keys=True),
                    socket.gethostname(),
                    os.getpid(),
                    now_iso(),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            self._conn.execute("UPDATE lease SET run_id = ? WHERE id = 1", (run_id,))
        return run_id

    def finish(self, run_id: int, counts: dict[str, int], exit_code: int) -> None:
        """Record how run ``run_id`` ended."""
        with self._ledger.transaction():
            self._conn.execute(
                "UPDATE runs SET finished_at = ?, counts = ?, exit_code = ? WHERE id = ?",
                (now_iso(), json.dumps(counts, sort_keys=True), exit_code, run_id),
            )

    def recent(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest ``limit`` runs, newest first, counts and arguments decoded."""
        rows = list(
            self._ledger.db.query(
                "SELECT id, command, started_at, finished_at, counts, exit_code, host, pid, "
                "arguments FROM runs ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )
        for row in rows:
            row["counts"] = json.loads(row["counts"]) if row["counts"] else None
            row["arguments"] = json.loads(row["arguments"]) if row["arguments"] else {}
        return rows

    def last_success(self) -> str | None:
        """When the last run that exited 0 finished; None if none has."""
        row = self._conn.execute("SELECT MAX(finished_at) FROM runs WHERE exit_code = 0").fetchone()
        return None if row is None or row[0] is None else str(row[0])
