"""Why a signal failed, for rows the server's list settled as failed (a repair, a rebuild, an
adoption before a push): the list carries no reason, so each such signal is read once, and
its processing error (redacted by the client, like every server value) becomes the row's
``last_error``; ``zsync errors`` then groups them by it as it does polled failures."""

from __future__ import annotations

from zsync.engine import RetryPolicy, SignalState, ZentrikClient
from zsync.errors import ApiError
from zsync.ledger import Ledger

# At most this many signals are read per call: a workspace of many failures is told its
# reasons over a few runs rather than one long one.
LIMIT = 1_000


def recover_failure_reasons(
    ledger: Ledger, client: ZentrikClient, retry: RetryPolicy, limit: int = LIMIT
) -> int:
    """Read the failed signals whose rows do not say why; the requests made."""
    wanted = ledger.trust.failed_without_reason(limit)
    found: list[tuple[str, str]] = []
    for external_id, public_id in wanted:

        def read(public_id: str = public_id) -> SignalState:
            return client.get_signal(public_id)

        try:
            state = retry.call(read)
        except ApiError:
            continue  # gone, or no answer: the row stays without a reason for now
        if state.error:
            found.append((external_id, state.error))
    ledger.trust.set_failure_reasons(found)
    return len(wanted)
