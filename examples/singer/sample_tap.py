#!/usr/bin/env python3
"""A stand-in Singer tap: replays tickets.singer.jsonl, honouring ``--state`` as a real tap does.

    python3 examples/singer/sample_tap.py --state state.json \
      | zsync push --input - --format singer --mapping examples/singer/zendesk.toml \
                   --state-file state.json

With a state file (written by zsync from the last bookmark it saved), only records updated
after the stream's bookmark are emitted. ``--sample FILE`` replays another recording.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", help="Singer state file (JSON)")
    parser.add_argument("--sample", default=str(HERE / "tickets.singer.jsonl"))
    args = parser.parse_args()
    state = {}
    if args.state and Path(args.state).exists():
        state = json.loads(Path(args.state).read_text() or "{}")
    bookmarks = state.get("bookmarks", {})
    for line in Path(args.sample).read_text().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            since = bookmarks.get(message["stream"], {}).get("updated_at", "")
            if message["record"]["updated_at"] <= since:
                continue
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
