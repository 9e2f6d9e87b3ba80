"""target-zentrik's settings: the config file Meltano writes, checked one key at a time,
and what they become (zsync settings, plan and run options, the ``--about`` description)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from zsync import __version__, config
from zsync.errors import ConfigError, UsageError
from zsync.model import RunOptions
from zsync.plan import ON_CHANGE, PlanOptions
from zsync.read import InputSpec
from zsync.shape.templates import parse_template

NAME = "target-zentrik"


DESCRIPTION = (
    "Singer target for Zentrik Signals: sends each record exactly once, with a local SQLite "
    "ledger, and emits a STATE only after the records before it are recorded."
)


ENV_PREFIX = "TARGET_ZENTRIK_"


@dataclass(frozen=True)
class Setting:
    """One setting of the target: its JSON Schema type, the text --about and Meltano show, its
    default, and whether it is secret, required or one of fixed choices."""

    name: str
    kind: str  # JSON Schema type: string, integer, number, boolean
    description: str
    default: Any = None
    sensitive: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()


SETTINGS = (
    Setting(
        "api_base",
        "string",
        "Zentrik API base URL, including /api (else env ZENTRIK_API_BASE).",
        config.DEFAULT_API_BASE,
    ),
    Setting(
        "api_key",
        "string",
        "Zentrik API key (else env TARGET_ZENTRIK_API_KEY or ZENTRIK_API_KEY). "
        "Never printed, logged or stored in the ledger.",
        sensitive=True,
        required=True,
    ),
    Setting(
        "ledger",
        "string",
        "The zsync ledger file (SQLite); keep it between runs.",
        config.DEFAULT_LEDGER,
    ),
    Setting(
        "mapping",
        "string",
        "Mapping file (TOML): how each stream's records become Signals. Without one, each "
        "record becomes an external_text signal: id from the stream and its key_properties, "
        "text a readable rendering of the record.",
    ),
    Setting(
        "signal_type",
        "string",
        "Without a mapping: the signals' signalType (default: the stream's name).",
    ),
    Setting(
        "name_template",
        "string",
        'Without a mapping: a template for the signals\' name, e.g. "{subject}" (none by '
        "default; a record without the fields it names gets none).",
    ),
    Setting("concurrency", "integer", "Requests in flight at once (1-64).", 8),
    Setting("rate", "number", "Cap on requests per second (creates and polls together)."),
    Setting("poll", "boolean", "Wait until the signals sent are processed.", True),
    Setting("poll_seconds", "number", "Total time to wait for processing to finish.", 300.0),
    Setting(
        "on_change",
        "string",
        "A known record whose content changed: update (PATCH + re-process), skip, or resend.",
        "update",
        choices=ON_CHANGE,
    ),
    Setting(
        "max_duration",
        "number",
        "Stop starting new work after this many seconds (exit 75; the next run continues).",
    ),
    Setting(
        "derive_external_id",
        "boolean",
        "Give records without externalId one derived from their content.",
        False,
    ),
    Setting(
        "allow_insecure_http",
        "boolean",
        "Allow a plain http:// API base that is not on this machine.",
        False,
    ),
    Setting("metrics_file", "string", "Write Prometheus metrics here at the end of each run."),
)


_BY_NAME = {s.name: s for s in SETTINGS}


def load_config(path: Path) -> dict[str, Any]:
    """The config file's settings, checked: one UsageError (exit 2) naming the first
    unknown key or wrong value. A null value counts as not set."""
    where = f"--config {path}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a JSON object of settings")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        setting = _BY_NAME.get(key)
        if setting is None:
            known = ", ".join(s.name for s in SETTINGS)
            raise UsageError(f"{where}: unknown setting {key!r} (known: {known})")
        if value is not None:
            values[key] = _checked(where, setting, value)
    return values


def _checked(where: str, setting: Setting, value: Any) -> Any:
    def bad(expected: str) -> UsageError:
        shown = "a secret value" if setting.sensitive else json.dumps(value)
        return UsageError(f"{where}: setting {setting.name!r} must be {expected}, not {shown}")

    kind = setting.kind
    if kind == "boolean":
        if type(value) is not bool:
            raise bad("true or false")
    elif kind == "integer":
        if type(value) is not int:
            raise bad("a whole number")
    elif kind == "number":
        if type(value) is str:
            # Meltano has no kind for a fractional number that survives its JSON config
            # file, so a setting without one, set from the environment, arrives as text.
            try:
                value = float(value)
            except ValueError:
                raise bad("a number") from None
        if type(value) not in (int, float) or not math.isfinite(value):
            raise bad("a number")
    elif type(value) is not str or not value.strip():
        raise bad("a non-empty string")
    if setting.choices and value not in setting.choices:
        raise bad("one of " + ", ".join(setting.choices))
    name = setting.name
    if name == "concurrency" and not 1 <= value <= 64:
        raise bad("from 1 to 64")
    if name in ("rate", "max_duration") and value <= 0:
        raise bad("a number above 0")
    if name == "poll_seconds" and value < 0:
        raise bad("a number of seconds, 0 or more")
    if name == "name_template":
        try:
            parse_template(value)
        except ValueError as exc:
            raise bad(f"a template ({exc})") from None
    return value


def api_key(values: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The config file's key, else Meltano's TARGET_ZENTRIK_API_KEY, else ZENTRIK_API_KEY."""
    for candidate in (
        values.get("api_key"),
        environ.get(ENV_PREFIX + "API_KEY"),
        environ.get("ZENTRIK_API_KEY"),
    ):
        if candidate and candidate.strip():
            return str(candidate).strip()
    return None


def settings_from(values: Mapping[str, Any], environ: Mapping[str, str]) -> config.Settings:
    """zsync's settings from the target's; no key is one line naming the target's setting."""
    key = api_key(values, environ)
    if key is None:
        raise ConfigError(
            f"no API key: set {NAME}'s api_key setting (`meltano config {NAME} set api_key "
            f"...`, kept in .env) or the environment variable {ENV_PREFIX}API_KEY"
        )
    return config.load(
        api_base=values.get("api_base"),
        api_key=key,
        ledger=values.get("ledger"),
        allow_insecure_http=bool(values.get("allow_insecure_http", False)),
        environ=environ,
    )


def plan_options(values: Mapping[str, Any], stdin: BinaryIO) -> PlanOptions:
    """What to read and how to shape it: Singer messages from ``stdin``, with the mapping,
    on_change and Singer defaults the settings give."""
    return PlanOptions(
        source=InputSpec(inputs=("-",), fmt="singer", stdin=stdin),
        mapping=values.get("mapping"),
        derive_external_id=bool(values.get("derive_external_id", False)),
        on_change=str(values.get("on_change", "update")),
        signal_type=values.get("signal_type"),
        name_template=values.get("name_template"),
    )


def run_options(values: Mapping[str, Any]) -> RunOptions:
    """How to send: concurrency (a fixed number, 8 unless set), rate, polling, time limit and
    metrics file from the settings."""
    return RunOptions(
        concurrency=int(values.get("concurrency", 8)),
        rate=values.get("rate"),
        poll=bool(values.get("poll", True)),
        poll_seconds=float(values.get("poll_seconds", 300.0)),
        max_duration=values.get("max_duration"),
        metrics_file=Path(values["metrics_file"]) if values.get("metrics_file") else None,
    )


def about_info() -> dict[str, Any]:
    """The Singer SDK's ``--about --format json`` shape; settings as a JSON Schema."""
    properties: dict[str, dict[str, Any]] = {}
    for s in SETTINGS:
        prop: dict[str, Any] = {"type": s.kind, "description": s.description}
        if s.default is not None:
            prop["default"] = s.default
        if s.choices:
            prop["enum"] = list(s.choices)
        if s.sensitive:
            # the SDK's annotations for a secret; Meltano shows such a setting as sensitive
            prop.update({"secret": True, "writeOnly": True})
        properties[s.name] = prop
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "version": __version__,
        "sdk_version": None,  # not built on the Singer SDK
        "supported_python_versions": ["3.11", "3.12", "3.13"],
        "capabilities": ["about"],
        "settings": {
            "type": "object",
            "properties": properties,
            "required": [s.name for s in SETTINGS if s.required],
            "additionalProperties": False,
        },
    }


def about_text() -> str:
    """``--about`` for a person: name, description, version, capabilities, then each setting."""
    info = about_info()
    lines = [
        f"Name: {info['name']}",
        f"Description: {info['description']}",
        f"Version: {info['version']}",
        "Capabilities:",
        *(f"  - {c}" for c in info["capabilities"]),
        "Settings:",
    ]
    for s in SETTINGS:
        lines += [
            f"  - Name: {s.name}",
            f"    Type: {s.kind}",
            f"    Required: {s.required}",
            f"    Sensitive: {s.sensitive}",
            f"    Description: {s.description}",
        ]
    return "\n".join(lines)
