"""Settings: flags > environment > --env-file > defaults.

Below the command line (``zsync/cli/``), this is the only module that reads ``os.environ``.
It also owns key redaction: every text that may have touched the server or the key passes
through :func:`redact` before it is stored or shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from zsync import proxy_rules
from zsync.errors import ConfigError, UsageError
from zsync.proxy_rules import is_loopback as is_loopback  # the emulator reads it here

# The address `zsync emulator` binds, spelt the same way: the ledger remembers the base it
# was used with, so one spelling here and another in the emulator (or in an example) made
# every run say "it now follows ...". The import template's default is localhost:8080.
DEFAULT_API_BASE = "http://127.0.0.1:8080/api"
DEFAULT_LEDGER = "zsync.db"
DEFAULT_WAIT_BUDGET = 120.0
# How long after a create went unanswered the server may still be committing it: twice the
# client's 30 s request timeout. A send in doubt is looked up (and perhaps resent) only after.
DEFAULT_DOUBT_HORIZON = 60.0
# The emulator's documented development key; it only ever opens the local emulator.
DEV_API_KEY = "zsync-dev-key"

# What an --env-file may set (the names of Zentrik's own template).
ENV_FILE_NAMES = frozenset({"ZENTRIK_API_BASE", "ZENTRIK_API_KEY"})


@dataclass(frozen=True)
class Settings:
    """One run's resolved settings. ``wait_budget`` is how long, in seconds, one request
    may be retried; ``doubt_horizon`` how long, in seconds, an unanswered create may still be
    committing on the server. ``repr`` never shows the key."""

    api_base: str = DEFAULT_API_BASE
    api_key: str | None = field(default=None, repr=False)
    ledger_path: Path = Path(DEFAULT_LEDGER)
    wait_budget: float = DEFAULT_WAIT_BUDGET
    allow_insecure_http: bool = False
    # --new-ledger: an existing file that is not a usable ledger is kept aside and replaced
    new_ledger: bool = False
    # One line each, for the command line to show (e.g. a key file others can read).
    warnings: tuple[str, ...] = ()
    doubt_horizon: float = DEFAULT_DOUBT_HORIZON

    def require_key(self) -> str:
        """The API key; ConfigError, saying where to get one, when none is set."""
        if not self.api_key:
            raise ConfigError(
                "ZENTRIK_API_KEY is not set: create a key in Zentrik under "
                "Settings → API Keys and export it (or put it in --env-file)"
            )
        return self.api_key

    def redact(self, text: str) -> str:
        """``text`` without this run's key or any bearer token."""
        return redact(text, self.api_key)


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines by the import template's rules: blank lines and ``#`` comments
    skipped; a value loses its surrounding spaces, then every ``'`` and then every ``"`` at
    either end (so ``KEY=val"`` is ``val``); a key given twice keeps its first value."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--env-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--env-file {path}: cannot read ({type(exc).__name__})") from None
    values: dict[str, str] = {}
    for raw_line in raw.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        if key and key not in values:
            values[key] = value.strip().strip("'").strip('"')
    return values


def load(
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    ledger: str | Path | None = None,
    env_file: Path | None = None,
    allow_insecure_http: bool = False,
    new_ledger: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve flags (the keyword arguments) over ``environ`` (default: ``os.environ``)
    over ``env_file`` over the defaults. Refuses (ConfigError/UsageError) a base that is not
    http(s), carries credentials, is plain http to another machine, or would send the key
    in clear text through a remote proxy; an unreadable env file; a wait budget or doubt
    horizon that is not a number of seconds."""
    env = dict(os.environ if environ is None else environ)
    warnings: list[str] = []
    if env_file is not None:
        # The environment wins over the file, as in Zentrik's template. A file gives the
        # API base and key only: nothing in it can lower a guard or move the ledger.
        from_file = parse_env_file(env_file)
        for name, value in from_file.items():
            if name in ENV_FILE_NAMES:
                env.setdefault(name, value)
        if from_file.get("ZENTRIK_API_KEY"):
            warnings.extend(_readable_by_others(env_file))

    base = (api_base or env.get("ZENTRIK_API_BASE") or DEFAULT_API_BASE).strip().rstrip("/")
    key = (api_key or env.get("ZENTRIK_API_KEY") or "").strip() or None
    ledger_path = Path(ledger or env.get("ZSYNC_LEDGER") or DEFAULT_LEDGER)
    # Only the command-line flag lifts the plain-http guard: no variable, no env file.
    insecure = allow_insecure_http
    wait_budget = _wait_budget(env.get("EVAL_API_WAIT_SECONDS") or env.get("ZSYNC_WAIT_SECONDS"))
    check_api_base(base, insecure)
    if proxy_rules.uses_proxy(base):
        # Refused here, before a ledger is opened; the client judges the same proxy again.
        proxy_rules.check(base, proxy_rules.environ_proxy(base, env))
    return Settings(
        api_base=base,
        api_key=key,
        ledger_path=ledger_path,
        wait_budget=wait_budget,
        allow_insecure_http=insecure,
        new_ledger=new_ledger,
        warnings=tuple(warnings),
        doubt_horizon=_doubt_horizon(env.get("ZSYNC_DOUBT_HORIZON")),
    )


def _readable_by_others(path: Path) -> list[str]:
    """A line when a file holding the key can be read by its group or by anyone."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return []
    if not mode & 0o077:
        return []
    return [
        f"--env-file {path} holds ZENTRIK_API_KEY and can be read by others (mode "
        f"{mode:04o}); make it private: chmod 600 {path}"
    ]


def child_environment(extra: Mapping[str, str | None]) -> dict[str, str]:
    """The environment for a source program: this one without the API key (the program
    fetches; it never needs to talk to Zentrik), with ``extra`` set (None removes)."""
    env = {k: v for k, v in os.environ.items() if k != "ZENTRIK_API_KEY"}
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _wait_budget(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_WAIT_BUDGET
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(f"EVAL_API_WAIT_SECONDS={raw!r} is not a number of seconds") from None


def _doubt_horizon(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_DOUBT_HORIZON
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"ZSYNC_DOUBT_HORIZON={raw!r} is not a number of seconds >= 0")
    return value


def check_api_base(base: str, allow_insecure_http: bool) -> None:
    """ConfigError unless ``base`` is an http(s) URL without credentials, and https when
    it leaves this machine (unless ``allow_insecure_http``): the key travels with every
    request."""
    parts = urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"ZENTRIK_API_BASE {base!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError("ZENTRIK_API_BASE must not carry credentials; use ZENTRIK_API_KEY")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"ZENTRIK_API_BASE uses plain http to {parts.hostname}: the key would travel "
            "unencrypted; use https (or --allow-insecure-http if you really mean it)"
        )


_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def redact(text: str, secret: str | None) -> str:
    """Remove the key (and any bearer token) from ``text``."""
    if secret:
        text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)
