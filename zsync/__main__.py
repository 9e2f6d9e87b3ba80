from __future__ import annotations

from zsync.cli import run

if __name__ == "__main__":
    run()
