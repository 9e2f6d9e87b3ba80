"""zsync: resumable, ledger-backed sync of customer evidence into Zentrik Signals."""

from __future__ import annotations

__version__ = "0.1.0"
