from __future__ import annotations

from zsync.cli import main

if __name__ == "__main__":
    main()
