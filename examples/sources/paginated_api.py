#!/usr/bin/env python3
"""A zsync source program: page through a JSON HTTP API with a cursor, resume from a bookmark.

    zsync push --mapping examples/sources/paginated_api.toml \
      --source-cmd "python3 examples/sources/paginated_api.py --base https://api.example.com"

The API answers ``GET {base}/items?cursor=X`` with ``{"items": [...], "next": "Y" | null}``
(no cursor: the first page), items in the order they were added, each with an ``id`` and
an ``updated_at``. A token, if the API needs one, comes from PAGINATED_API_TOKEN, never from
the command line (zsync records the program's name in its run history, not its arguments,
but a command line is visible to every user of the machine).

The protocol with zsync (any language can follow it):
- stdout: one JSON record per line, then, when the records before it are complete, a
  bookmark line ``{"type": "STATE", "value": {...}}``. zsync saves the value only after
  every record before it is recorded in its ledger.
- ZSYNC_BOOKMARK: the last saved value (JSON), absent on the first run.
- stderr: messages for the person or the cron mail; a non-zero exit fails the zsync run
  (exit 1) after what was emitted has been recorded.

Resuming: the bookmark holds the cursor to read from next and the newest (updated_at, id)
emitted. A run reads from that cursor; when the API had no next page, that is the cursor of
the last page, read again to pick up items added to it, and the items already emitted are
skipped, so only new records are emitted and sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT = 30.0


def fetch(base: str, cursor: str | None, token: str | None) -> dict[str, Any]:
    url = f"{base.rstrip('/')}/items"
    if cursor is not None:
        url += "?" + urllib.parse.urlencode({"cursor": cursor})
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        page: dict[str, Any] = json.load(response)
    return page


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="API base URL")
    args = parser.parse_args()
    token = os.environ.get("PAGINATED_API_TOKEN")
    bookmark = json.loads(os.environ.get("ZSYNC_BOOKMARK") or "{}")
    cursor: str | None = bookmark.get("cursor")
    newest = (bookmark.get("updated_at") or "", str(bookmark.get("id") or ""))
    pages = sent = 0
    try:
        while True:
            page = fetch(args.base, cursor, token)
            pages += 1
            for item in page["items"]:
                key = (str(item["updated_at"]), str(item["id"]))
                if key <= newest:
                    continue  # emitted by an earlier run
                emit(item)
                sent += 1
                newest = max(newest, key)
            following = page.get("next")
            # The page is complete: bookmark where to go on from. Without a next page,
            # that is this page again (new items may be added to it).
            emit(
                {
                    "type": "STATE",
                    "value": {
                        "cursor": following if following is not None else cursor,
                        "updated_at": newest[0],
                        "id": newest[1],
                    },
                }
            )
            sys.stdout.flush()
            if following is None:
                break
            cursor = following
    except (OSError, ValueError, KeyError) as exc:
        print(f"paginated_api: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"paginated_api: {sent} new item(s) from {pages} page(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
