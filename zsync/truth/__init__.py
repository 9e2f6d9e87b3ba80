"""Server truth: read what Zentrik holds (``index``), compare it with the ledger and repair the
ledger from it (``verify``), decide before a push creates whether the ledger can vouch for
itself (``trust``), and recover the failure reasons the list does not carry (``reasons``).
The ledger is an intent log plus a cache of the server; this package is how the cache is
checked, corrected and rebuilt."""

from __future__ import annotations

from zsync.truth.index import read_index
from zsync.truth.verify import VerifyReport, verify

__all__ = ["VerifyReport", "read_index", "verify"]
