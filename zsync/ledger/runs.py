"""The runs table: one row per run, its arguments, counts and exit code."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from zsync.ledger.store import Store, now_iso


class RunsTable(Store):
    def start_run(self, command: str, arguments: dict[str, Any]) -> int:
        with self.transaction():
            cur = self.conn.execute(
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
            self.conn.execute("UPDATE lease SET run_id = ? WHERE id = 1", (run_id,))
        return run_id

    def finish_run(self, run_id: int, counts: dict[str, int], exit_code: int) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE runs SET finished_at = ?, counts = ?, exit_code = ? WHERE id = ?",
                (now_iso(), json.dumps(counts, sort_keys=True), exit_code, run_id),
            )

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, command, started_at, finished_at, counts, exit_code, host, pid, "
            "arguments FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": r[0],
                "command": r[1],
                "started_at": r[2],
                "finished_at": r[3],
                "counts": json.loads(r[4]) if r[4] else None,
                "exit_code": r[5],
                "host": r[6],
                "pid": r[7],
                "arguments": json.loads(r[8]) if r[8] else {},
            }
            for r in rows
        ]

    def last_success(self) -> str | None:
        row = self.conn.execute("SELECT MAX(finished_at) FROM runs WHERE exit_code = 0").fetchone()
        return None if row is None or row[0] is None else str(row[0])
