"""Stage 4, the engine: jobs -> a worker pool -> outcomes -> one writer (the caller's thread).

Inside, one way down (import-linter's ``engine`` contract in pyproject.toml checks it):

    run                  the run loop: jobs in, outcomes out, the writer (ledger, counts)
    worker               one job -> its requests (paced, limited, retried) -> one Outcome
    client, pacing,      one method per endpoint of the Signals API; when the next request
    limiter, polls       may start (rate, --delay-ms, Retry-After); how many may be in
                         flight; when to poll a signal
    request              how one request is sent and its answer first judged
    failures             what went wrong with a request, as an exception of zsync.errors
    answers, retry       reading the API's answers; the one retry policy
    proxies              the session a client sends on

Code outside the engine imports the names below from here, not from the modules.
"""

from __future__ import annotations

from zsync.engine.client import ListPage, Receipt, SignalState, ZentrikClient
from zsync.engine.limiter import CEILING, Limiter
from zsync.engine.pacing import Pacer
from zsync.engine.retry import RetryPolicy
from zsync.engine.run import Engine

__all__ = [
    "CEILING",
    "Engine",
    "Limiter",
    "ListPage",
    "Pacer",
    "Receipt",
    "RetryPolicy",
    "SignalState",
    "ZentrikClient",
]
