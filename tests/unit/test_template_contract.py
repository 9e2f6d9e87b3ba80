"""Where the README says "same", the import template's rule, exactly (issue 23).

The template is /work/shared/reference/signals-import-template.txt: its ``load_env_file``,
``request_json`` (retry while the wait budget lasts), ``check_readyz``, ``spec_to_create_body``
and the summary ``{"attempted", "ok", "results"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from tests.conftest import run_cli
from zsync import config
from zsync.engine.client import ZentrikClient
from zsync.engine.retry import RetryPolicy
from zsync.errors import ApiUnavailable, ServerUnavailable

BASE = "http://127.0.0.1:8999/api"
KEY = "unit-secret-key"
ENV = {"ZENTRIK_API_BASE": BASE, "ZENTRIK_API_KEY": KEY}
SIGNALS = f"{BASE}/external/v1/signals"
READY = {"checks": {"database": "ok", "workspaceQueue": "ok"}}


def _record(external_id: str, **extra: object) -> dict[str, object]:
    return {
        "kind": "external_text",
        "externalId": external_id,
        "signalType": "transcript",
        "text": "hello",
        **extra,
    }


def _input(records: list[dict[str, object]], name: str = "in.jsonl") -> str:
    Path(name).write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return name


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def api(rsps: responses.RequestsMock) -> responses.RequestsMock:
    rsps.get(f"{BASE}/readyz", json=READY)
    rsps.get(f"{BASE}/external/v1/auth/context", json={"workspace": {"id": "ws-1"}})
    # An empty workspace: the check before the first create finds nothing to adopt.
    rsps.get(SIGNALS, json=[], headers={"X-Total-Count": "0"})
    return rsps


# -- env files: first occurrence wins, quotes stripped as the template strips them --------


def test_an_env_file_key_given_twice_keeps_its_first_value(tmp_path: Path) -> None:
    env_file = tmp_path / "zsync.env"
    env_file.write_text("ZENTRIK_API_KEY=first-key\nZENTRIK_API_KEY=second-key\n")
    settings = config.load(env_file=env_file, environ={})
    assert settings.api_key == "first-key"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('ZENTRIK_API_KEY=val"', "val"),  # the template strips an unpaired quote too
        ("ZENTRIK_API_KEY='val", "val"),
        ("ZENTRIK_API_KEY=\"'val'\"", "'val'"),  # ' first, then ": the inner pair stays
        ("ZENTRIK_API_KEY='\"val\"'", "val"),
        ('ZENTRIK_API_KEY=  "val"  ', "val"),
    ],
)
def test_env_file_quotes_are_stripped_as_the_template_strips_them(
    tmp_path: Path, line: str, value: str
) -> None:
    env_file = tmp_path / "zsync.env"
    env_file.write_text(line + "\n")
    assert config.load(env_file=env_file, environ={}).api_key == value


# -- the wait budget is honoured by time ----------------------------------------------------


def test_thirteen_503s_then_a_create_succeed_within_a_120_s_budget(
    rsps: responses.RequestsMock,
) -> None:
    # The template retries 13 x 503 and succeeds at 59 s; zsync used to give up after 12
    # attempts (38 s) with 80 s of the budget left.
    for _ in range(13):
        rsps.post(SIGNALS, status=503, json={"error": {"message": "maintenance"}})
    rsps.post(SIGNALS, status=201, json={"publicId": "S-1", "jobId": "j-1"})
    policy = RetryPolicy.instant(budget=120.0)  # real waits, recorded not slept
    with ZentrikClient(BASE, KEY) as client:
        receipt = policy.call(lambda: client.create_signal(b'{"a":1}', "k-1"))
    assert receipt.public_id == "S-1"
    assert len(rsps.calls) == 14
    assert sum(policy.slept) < 120.0


def test_retries_go_on_until_the_budget_is_spent(rsps: responses.RequestsMock) -> None:
    rsps.post(SIGNALS, status=503, json={"error": {"message": "maintenance"}})
    policy = RetryPolicy.instant(budget=300.0)
    with ZentrikClient(BASE, KEY) as client, pytest.raises(ServerUnavailable):
        policy.call(lambda: client.create_signal(b'{"a":1}', "k-1"))
    # The last attempt is made at the deadline, not a backoff's length before it.
    assert 299.0 <= sum(policy.slept) <= 300.0
    assert len(rsps.calls) > 12


# -- readyz: the template compares each check's value with the string "ok" -----------------


def test_readyz_checks_that_are_objects_are_refused(rsps: responses.RequestsMock) -> None:
    checks = {"database": {"status": "ok"}, "workspaceQueue": {"status": "ok"}}
    rsps.get(f"{BASE}/readyz", json={"checks": checks})
    with ZentrikClient(BASE, KEY) as client, pytest.raises(ApiUnavailable) as caught:
        client.readyz()
    assert "database=object, not a string" in str(caught.value)


def test_push_exits_4_when_readyz_checks_are_objects(rsps: responses.RequestsMock) -> None:
    checks = {"database": {"status": "ok"}, "workspaceQueue": {"status": "ok"}}
    rsps.get(f"{BASE}/readyz", json={"checks": checks})
    result = run_cli(["push", "--input", _input([_record("r-1")])], env=ENV)
    assert result.code == 4, result.err
    assert "API not ready" in result.err


# -- fields the template does not send are named, the client's four included ---------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sourceKey", "helpdesk.v1"),
        ("participantPolicy", "match"),
        ("createMissingAccounts", True),
        ("sourceExternalData", {"a": 1}),
    ],
)
def test_client_fields_get_the_template_warning(field: str, value: object) -> None:
    result = run_cli(
        ["push", "--dry-run", "--input", _input([_record("r-1", **{field: value})])], env=ENV
    )
    assert result.code == 0, result.err
    assert f"warning: field '{field}' is not sent by the import template" in result.err
    assert json.loads(result.out.splitlines()[0])[field] == value  # and still sent


def test_a_mapping_files_own_source_key_is_not_warned_about() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    result = run_cli(
        [
            "push",
            "--dry-run",
            "--input",
            str(examples / "tickets.jsonl"),
            "--mapping",
            str(examples / "tickets.toml"),
        ],
        env=ENV,
    )
    assert result.code == 0, result.err
    assert "sourceKey" not in result.err
    assert "sourceKey" in result.out


# -- the summary: attempted counts every record, ok as the template counts it ---------------


def test_json_attempted_counts_invalid_records_too(api: responses.RequestsMock) -> None:
    api.post(SIGNALS, status=201, json={"publicId": "S-1", "jobId": "j-1"})
    api.post(SIGNALS, status=201, json={"publicId": "S-2", "jobId": "j-2"})
    records = [_record("r-1"), {"kind": "external_text", "externalId": "bad"}, _record("r-2")]
    result = run_cli(["push", "--no-poll", "--json", "--input", _input(records)], env=ENV)
    assert result.code == 1, result.err  # one invalid record
    summary = json.loads(result.out)
    assert (summary["attempted"], summary["ok"]) == (3, 2)


def test_dry_run_json_puts_its_summary_on_stdout_with_ok() -> None:
    records = [_record("r-1"), _record("r-2"), {"kind": "external_text", "externalId": "bad"}]
    result = run_cli(["push", "--dry-run", "--json", "--input", _input(records)], env=ENV)
    lines = result.out.splitlines()
    bodies = [json.loads(line) for line in lines[:-1]]
    summary = json.loads(lines[-1])
    assert [b["externalId"] for b in bodies] == ["r-1", "r-2"]
    assert (summary["attempted"], summary["ok"]) == (3, 2)
    assert "attempted" not in result.err


def test_a_real_runs_policy_has_no_attempt_cap() -> None:
    from zsync.engine import retry

    retry.set_testing(None)  # as outside the test suite (the autouse fixture restores it)
    try:
        policy = RetryPolicy.for_run(120.0)
    finally:
        retry.set_testing(0.01, max_attempts=12)
    assert policy.max_attempts is None
    assert policy.budget == 120.0
