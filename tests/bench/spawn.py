"""A small process that starts the measured zsync runs, so their peak RSS is their own.

Linux carries the peak RSS of a process over ``fork`` and ``exec`` (``ru_maxrss`` of a child
starts at its parent's size when it forked). The benchmark process grows while it generates
inputs and fills ledgers, so zsync is started from this process instead, which stays at the
size of a bare interpreter (about 10 MB, far below any zsync run).

Protocol: one JSON object per line on stdin (argv, cwd, env, stdout, stderr paths or null
for /dev/null); one JSON answer per line on stdout (wall, code, maxrss_kb, cpu_s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        outs = []
        for name in ("stdout", "stderr"):
            path = job.get(name)
            outs.append(open(path, "wb") if path else open(os.devnull, "wb"))  # noqa: SIM115
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(
                job["argv"], cwd=job["cwd"], env=job["env"], stdout=outs[0], stderr=outs[1]
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            for f in outs:
                f.close()
        answer = {
            "wall": wall,
            "code": proc.returncode,
            "maxrss_kb": usage.ru_maxrss,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
