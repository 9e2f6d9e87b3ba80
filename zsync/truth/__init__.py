"""Server truth: read what Zentrik holds (``index``), compare it with the ledger and repair the
ledger from it (``verify``). The ledger is an intent log plus a cache of the server; this
package is how the cache is checked, corrected and rebuilt."""

from __future__ import annotations

from zsync.truth.index import read_index
from zsync.truth.verify import VerifyReport, verify

__all__ = ["VerifyReport", "read_index", "verify"]
