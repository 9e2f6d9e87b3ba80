"""zsync: resumable, ledger-backed sync of customer evidence into Zentrik Signals.

The code is a one-way pipeline; each stage is a module or package named for it, and no stage
imports one above it. The README's "How it works" has the same map; the import order is
import-linter's layers contract in pyproject.toml, which ``make lint`` checks:

    cli/, console        options -> one library call -> render (the only code that prints);
                         cli/target is the Singer target's entry point (target-zentrik)
    api                  the Python API: the same library calls, a Result, no printing
    ui/                  `zsync ui` (the ui extra): a read-only Datasette dashboard over
                         the ledger, with read-only queries of its own
    operations, views    the run skeleton of push/reconcile/retry-failed; read-only views
    plan/                read -> shape -> diff against the ledger -> intents, then jobs;
                         skip: each input's cut records hashed and matched against the
                         ledger before they are parsed (the first file cut and hashed
                         while the ledger's check runs); upsert: Singer's last version wins
    truth/               the server's list as an index, trusted only when proven
                         complete: verify, repair, rebuild; trust: can the ledger vouch
                         for itself before a push creates (else adopt first); with
                         plan/indoubt, sends in doubt looked up (after their doubt horizon)
                         before any resend
    report, metrics      what a person or a scraper reads about a run
    engine/              the run loop -> worker pool (worker, client, retry, pacing,
                         limiter, polls) -> outcomes -> one writer that records and counts
    read/                one Source per input (a file, stdin, a source program), its
                         format decided once: records() -> Record / Problem / StateMessage,
                         and cut(): a regular file's records as bytes for the skip path
    shape/               mapping files, validation, canonical JSON, hashes and keys;
                         singer_body: a Singer record's identity and body without a mapping
    ledger/              every SQL statement that writes, and the readers: a thin handle
                         with one small object per table (items, runs, lease, server,
                         trust, meta); open, check, migrate
    model, config        shared leaves: value types and Status; settings and key redaction
    proxy_rules, errors  which proxy the key may cross; exceptions and exit codes
    emulator/            a local Zentrik API for demos and tests (shares only config, errors)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zsync.version import __version__

__all__ = ["Result", "__version__", "push", "reconcile", "retry_failed", "status", "verify"]

if TYPE_CHECKING:
    from zsync.api import Result, push, reconcile, retry_failed, status, verify


def __getattr__(name: str) -> Any:
    """The API is imported on first use: ``import zsync`` (which every module's import runs
    first) stays cheap, and a stage importing ``zsync`` for ``__version__`` does not load
    the stages above it."""
    if name in __all__:
        from zsync import api

        return getattr(api, name)
    raise AttributeError(f"module 'zsync' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazily imported API included."""
    return sorted({*globals(), *__all__})
