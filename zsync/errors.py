"""The one exception tree and exit-code enum of zsync.

Callers catch a whole layer at once; the command line's entry points (``main`` in
``zsync/cli/__init__.py``, and ``zsync/cli/target.py`` for target-zentrik) are the only places
that turn an exception into a message and an exit code.

    ZsyncError                      (exit_code on the class)
    ├── UsageError                  2  bad flags or arguments
    ├── ConfigError                 3  missing key, bad base URL, wrong workspace
    │   ├── AuthError               3  the API refused the key (401/403)
    │   └── WrongWorkspace          3  a receipt names another workspace than the ledger's
    ├── ApiUnavailable              4  readyz not ready, API unreachable at preflight
    │   └── IncompleteListing       4  the server's list cannot be proven complete
    ├── LedgerError                 5  ledger unusable (corrupt, newer schema, unwritable)
    │   └── LedgerLocked            5  another run holds the lease
    ├── InputError                  1  reading an input failed once the run had begun
    └── ApiError                    -  one request failed; the engine decides the item's fate
        ├── TransientError             worth retrying with the same body and key
        │   ├── TransportError           connection refused/reset, timeout
        │   │   └── NotDelivered           refused, connect timeout, DNS: never reached it
        │   ├── RateLimited              429 (carries retry_after seconds, may be None)
        │   ├── ServerUnavailable        500/502/503/504
        │   └── WarmingUp                GET/DELETE 404 with the web front end's index.html
        └── PermanentError             retrying the same request cannot help
            ├── Rejected                 other 4xx (carries status and a short reason)
            ├── Conflict                 409: reconcile, never a new key
            ├── RedirectRefused          3xx: never followed; ends the run (exit 3)
            └── MalformedResponse        2xx whose body is not what the API promises

No message in this tree ever contains the API key: ``config.redact`` is applied to every
server-provided text before it is stored in an exception.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status zsync uses; the README's table is rendered from :attr:`meaning`
    (a test keeps the two equal)."""

    OK = 0
    ITEMS_FAILED = 1
    USAGE = 2
    CONFIG = 3
    UNAVAILABLE = 4
    LEDGER = 5
    INTERNAL = 70
    PENDING = 75
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """What this status tells the person or scheduler that ran zsync (the README's text)."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "all done or unchanged",
    ExitCode.ITEMS_FAILED: (
        "some items failed, were rejected, invalid, duplicated in the input, or in conflict; "
        "a prune was refused; or a source program exited non-zero (after what it emitted "
        "was recorded)"
    ),
    ExitCode.USAGE: (
        "usage error: a bad flag or argument, a mapping file that cannot be used, an input "
        "that cannot be read"
    ),
    ExitCode.CONFIG: (
        "configuration or authentication: missing key, key refused (401/403), wrong "
        "workspace, the API base answers with a redirect"
    ),
    ExitCode.UNAVAILABLE: (
        "API not ready or unreachable, or its list cannot be proven complete where a run must "
        "act on it (`verify --repair`, sends in doubt): nothing is adopted, deleted or resent "
        "from it"
    ),
    ExitCode.LEDGER: (
        "ledger locked by another run, or unusable (corrupt, newer schema, unwritable)"
    ),
    ExitCode.INTERNAL: "internal error (a bug: rerun with `--debug` and report it)",
    ExitCode.PENDING: (
        "work still pending (`--max-duration` reached, `--limit`, retries outlasted the wait "
        "budget, the API stopped answering mid-run, signals still processing); the next run "
        "continues it"
    ),
    ExitCode.INTERRUPTED: (
        "interrupted (Ctrl-C / SIGTERM) after recording what was in flight; the next run resumes"
    ),
}


class ZsyncError(Exception):
    """The root of every error zsync raises on purpose; ``exit_code`` is what the process
    exits with when it reaches the command line, and ``message`` is the one line it prints."""

    exit_code: ExitCode = ExitCode.ITEMS_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ZsyncError):
    """A bad flag or argument, a mapping file that cannot be used, an input that cannot be
    opened: the person has to change the command."""

    exit_code = ExitCode.USAGE


class ConfigError(ZsyncError):
    """The key, API base or workspace is wrong or missing: no run can succeed until it is fixed."""

    exit_code = ExitCode.CONFIG


class AuthError(ConfigError):
    """The API refused the key (401/403)."""


class WrongWorkspace(ConfigError):
    """A receipt names another workspace than the one this ledger has synced to."""


class ApiUnavailable(ZsyncError):
    """The API is not ready, cannot be reached, or its list cannot be read whole; a later run
    may succeed."""

    exit_code = ExitCode.UNAVAILABLE


class IncompleteListing(ApiUnavailable):
    """The server's list could not be proven complete (no total and pages that moved, a total
    that changed, items that are not signals, ...): nothing may be marked gone, adopted or
    resent from it. Raised instead of returning such a listing to a caller that would act."""


class LedgerError(ZsyncError):
    """The ledger cannot be used: corrupt, from a newer zsync, or not writable."""

    exit_code = ExitCode.LEDGER


class LedgerLocked(LedgerError):
    """Another live run holds the ledger's lease."""


class InputError(ZsyncError):
    """Reading an input failed once the run had begun (an I/O error, no standard input to
    read). An input found missing or unreadable before the run is a UsageError instead."""

    exit_code = ExitCode.ITEMS_FAILED


class ApiError(ZsyncError):
    """One request failed. ``status`` is the HTTP status, or None for transport failures."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(ApiError):
    """Worth retrying: the same body under the same idempotency key may succeed."""


class TransportError(TransientError):
    """The connection failed (refused, reset, timed out): the request may have arrived or not."""


class NotDelivered(TransportError):
    """The request never reached the server, so it cannot have created anything."""


class RateLimited(TransientError):
    """429; ``retry_after`` is the server's Retry-After in seconds, or None when it gave none."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ServerUnavailable(TransientError):
    """500/502/503/504 from the API."""


class WarmingUp(TransientError):
    """A GET or DELETE answered 404 with the web front end's index.html: the API is not routed
    yet."""


class PermanentError(ApiError):
    """Retrying the same request cannot help; the item fails, or the run ends."""


class Rejected(PermanentError):
    """Any other error status (a 4xx such as 400, 404, 422); ``status`` and a short reason are
    kept for the ledger."""


class Conflict(PermanentError):
    """409: the request collides with what the server holds (an existing signal, or its key
    still in use). Reconcile; never retry under a new key."""

    def __init__(self, message: str, public_id: str | None = None) -> None:
        super().__init__(message, status=409)
        self.public_id = public_id  # the existing signal, when the 409 body names it


class RedirectRefused(PermanentError):
    """A 3xx answer: redirects are never followed, and the run ends with exit 3."""

    # Every request to a base that redirects is redirected: a configuration problem (http vs
    # https, a missing /api), so it ends the run like a refused key.
    exit_code = ExitCode.CONFIG


class MalformedResponse(PermanentError):
    """A 2xx whose body is not what the API promises."""
