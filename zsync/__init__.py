"""zsync: resumable, ledger-backed sync of customer evidence into Zentrik Signals.

The code is a one-way pipeline; each stage is a module or package named for it, and no stage
imports one above it (the README's "How it works" has the same map):

    cli/, console        options -> one library call -> render (the only code that prints);
                         cli/target is the Singer target's entry point (target-zentrik)
    operations, views    the run skeleton of push/reconcile/retry-failed; read-only views
    plan/                read -> shape -> diff against the ledger -> intents, then jobs;
                         skip: records matched as bytes before they are parsed (the
                         first file cut and hashed while the ledger's check runs)
    read/                files, stdin, source programs -> Record / Problem / StateMessage
    shape/               mapping files, validation, canonical JSON, hashes and keys
    engine, worker       worker pool (worker, client, retry, pacing, limiter, polls)
                         -> outcomes -> one writer
    truth/               the server's list as an index: verify, repair, rebuild; trust:
                         can the ledger vouch for itself before a push creates (else
                         adopt first); with plan/indoubt, sends in doubt looked up first
    ledger/              every SQL statement: open, check, migrate, lease, runs, items
    report, metrics      what a person or a scraper reads about a run
    model, errors, config   shared leaves: value types and Status; exceptions and exit
                         codes; settings and key redaction
    emulator/            a local Zentrik API for demos and tests (shares only config)
"""

from __future__ import annotations

__version__ = "0.1.0"
