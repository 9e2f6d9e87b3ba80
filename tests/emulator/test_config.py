"""EmulatorConfig validation and live changes: a bad setting fails at once, naming itself."""

from __future__ import annotations

from typing import Any

import pytest

from zsync.emulator.config import LIVE_FIELDS, EmulatorConfig


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"idempotency": "sometimes"}, "idempotency"),
        ({"duplicate_answer": "maybe"}, "duplicate_answer"),
        ({"conflict_body": "loud"}, "conflict_body"),
        ({"list_order": "alphabetical"}, "list_order"),
        ({"list_fault": "all"}, "list_fault"),
        ({"failure_reason_at": "processing.reason"}, "failure_reason_at"),
        ({"retry_after": "minutes"}, "retry_after"),
        ({"delete_status": 202}, "delete_status"),
        ({"delete_status": "204"}, "delete_status"),
        ({"max_inflight": -1}, "max_inflight"),
        ({"max_inflight": True}, "max_inflight"),
        ({"max_inflight": 2.5}, "max_inflight"),
        ({"inflight_cost_ms": -1}, "inflight_cost_ms"),
        ({"idempotency_ttl_seconds": float("inf")}, "idempotency_ttl_seconds"),
        ({"failure_reason": "  "}, "failure_reason"),
        ({"receipt_workspace": ""}, "receipt_workspace"),
        ({"echo_key_in": " "}, "echo_key_in"),
        ({"readyz_extra_checks": {"database": "down"}}, "database"),
        ({"readyz_extra_checks": {"cache": ""}}, "cache"),
    ],
)
def test_bad_settings_are_refused_naming_them(setting: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        EmulatorConfig(**setting)


def test_defaults_are_the_documented_contract() -> None:
    config = EmulatorConfig()
    assert (config.idempotency, config.dedupe, config.duplicate_answer) == (
        "honour",
        "on",
        "replay",
    )
    assert (config.conflict_body, config.list_order, config.list_fault) == (
        "named",
        "created",
        "none",
    )
    assert config.delete_status == 204
    assert config.max_inflight == 0 and config.inflight_cost_ms == 0
    assert config.receipt_workspace is None and config.echo_key_in is None


def test_readyz_checks_accept_pairs_or_a_mapping() -> None:
    from_pairs = EmulatorConfig(readyz_extra_checks=[("cache", "degraded")])  # type: ignore[arg-type]
    from_dict = EmulatorConfig(readyz_extra_checks={"cache": "degraded"})  # type: ignore[arg-type]
    assert (
        from_pairs.readyz_extra_checks == from_dict.readyz_extra_checks == (("cache", "degraded"),)
    )


def test_queueing_and_list_faults_are_live_but_contract_shape_is_not() -> None:
    assert {"inflight_cost_ms", "max_inflight", "list_fault"} <= LIVE_FIELDS
    config = EmulatorConfig()
    config.update(max_inflight=4, inflight_cost_ms=10.0, list_fault="shrink")
    assert (config.max_inflight, config.inflight_cost_ms, config.list_fault) == (4, 10.0, "shrink")
    with pytest.raises(ValueError):
        config.update(max_inflight=2, list_fault="everything")
    assert config.max_inflight == 4  # all or nothing
    for fixed in ("idempotency", "list_order", "conflict_body", "echo_key_in"):
        with pytest.raises(TypeError, match=fixed):
            config.update(**{fixed: getattr(config, fixed)})
