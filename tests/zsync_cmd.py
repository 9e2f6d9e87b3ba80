"""zsync's command line as the subprocess tests run it: retries at test speed.

``ZSYNC_RETRY_SCALE`` (read here, in the test tree, never by zsync itself) is handed to
:func:`zsync.engine.retry.set_testing`. Run as ``[*ZSYNC, "push", ...]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ZSYNC = [sys.executable, str(Path(__file__).resolve())]

if __name__ == "__main__":
    from zsync.cli import run
    from zsync.engine import retry

    scale = os.environ.get("ZSYNC_RETRY_SCALE")
    if scale:
        retry.set_testing(float(scale))
    run()
