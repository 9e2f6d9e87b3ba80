"""Outcomes are values: a worker hands back what its requests got, and only the caller's
thread counts it; a duplicate is a kind, not a message's wording (issue 24)."""

from __future__ import annotations

import threading
from typing import Any

from zsync.engine.client import Receipt
from zsync.engine.limiter import Limiter
from zsync.engine.pacing import Pacer
from zsync.engine.retry import RetryPolicy
from zsync.engine.worker import Worker
from zsync.errors import AuthError, ServerUnavailable
from zsync.model import (
    Event,
    EventKind,
    Invalid,
    OutcomeKind,
    RunResult,
    SendJob,
)
from zsync.plan.options import PlanOptions
from zsync.plan.push import _report_invalid


class _Client:
    """Answers creates from a script: an exception to raise, or a status to answer with."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.workspace_id: str | None = None
        self.threads: set[int] = set()

    def create_signal(self, body: bytes, idempotency_key: str) -> Receipt:
        self.threads.add(threading.get_ident())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Receipt("SIGNAL-1", "job-1", None, "queued", answer)

    def close(self) -> None:
        pass


def _worker(client: _Client) -> Worker:
    return Worker(
        lambda: client,  # type: ignore[arg-type, return-value]
        pacer=Pacer(),
        limiter=Limiter(),
        retry=RetryPolicy(budget=5.0, initial=0.0, maximum=0.0, min_wait=0.0),
        emit=lambda _: None,
    )


def test_a_job_returns_its_answers_and_retries_with_its_outcome() -> None:
    client = _Client([ServerUnavailable("503 busy", 503), 201])
    done = _worker(client).run_job(SendJob("e-1", b"{}", "key-1"))
    assert done.outcome is not None and done.outcome.kind == OutcomeKind.CREATED
    assert done.outcome.kind == "created"  # the same string in the ledger, logs and JSON
    assert done.requests == ("503", "201") and done.retries == 1
    assert done.fatal is None


def test_an_error_that_ends_the_run_is_returned_with_the_requests_it_took() -> None:
    client = _Client([AuthError("401: the key was refused")])
    done = _worker(client).run_job(SendJob("e-1", b"{}", "key-1"))
    assert done.outcome is None and isinstance(done.fatal, AuthError)


def test_the_run_result_adds_up_what_workers_return() -> None:
    result = RunResult("push")
    result.add_requests(("503", "201"), retries=1)
    result.add_requests(("201",))
    result.count("created", 2)
    assert result.requests == {"503": 1, "201": 2} and result.retries == 1
    assert result.counts["created"] == 2


def test_a_duplicate_is_told_by_its_kind_not_by_its_wording() -> None:
    result = RunResult("push")
    seen: list[Event] = []
    invalid = [
        Invalid("in.jsonl:2", "a", "externalId", "in.jsonl:2: the same again", EventKind.DUPLICATE),
        # A message that happens to end like the duplicate one is still just invalid.
        Invalid("in.jsonl:3", "b", "text", "in.jsonl:3: field 'text': not sent twice"),
    ]
    _report_invalid(None, PlanOptions(), invalid, result, seen.append, run_id=1)
    assert result.counts == {"duplicate": 1, "invalid": 1}
    assert [e.kind for e in seen] == ["duplicate", "invalid"]
