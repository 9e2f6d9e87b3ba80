"""Which proxy a request to the API base goes through, and whether that is allowed.

The rules only (no requests): :mod:`zsync.config` judges the settings by them before a
ledger is opened, and :mod:`zsync.engine.proxies` builds the session the client sends on.

The plain-http guard (:func:`zsync.config.check_api_base`) judges the base URL; a proxy is a
second hop the key travels over. So, for an ``http://`` base:

- a base on this machine never goes through a proxy (the emulator, a port-forward: an
  ``HTTP_PROXY`` meant for the internet would otherwise see the key in clear text);
- a base elsewhere (allowed by ``--allow-insecure-http``) may not go through a plain-http
  proxy that is not on this machine either: that is one more host reading the key.

An ``https://`` base goes through whatever proxy the environment names: the proxy only tunnels
the encrypted connection. The proxy is named in messages without its user and password.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from zsync.errors import ConfigError

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    """True for a name or address of this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host in _LOOPBACK_HOSTS:
        return True
    # An address, not a name: "127.0.0.1.nip.io" starts like one but resolves anywhere.
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def environ_proxy(base: str, environ: Mapping[str, str]) -> str | None:
    """The proxy URL a request to ``base`` would use under ``environ`` (None: direct), by
    the rules requests follows: ``<scheme>_proxy`` or ``all_proxy`` (lower case first),
    unless ``no_proxy`` names the host (a name suffix, an address, a network or ``*``)."""
    parts = urlsplit(base)
    host = parts.hostname or ""
    found: dict[str, str] = {}
    for name, value in environ.items():
        lower = name.lower()
        if value and lower.endswith("_proxy") and (lower == name or lower not in found):
            found[lower] = value
    proxy = found.get(f"{parts.scheme}_proxy") or found.get("all_proxy")
    if not proxy or _bypassed(host, parts.port, found.get("no_proxy", "")):
        return None
    return proxy


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip() for e in no_proxy.replace(" ", ",").split(",")):
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    named = f"{host}:{port}" if port else host
    # urllib's own no_proxy rules (names, suffixes, host:port, "*"), given the value rather
    # than the process environment; typeshed does not list this public helper.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return bool(no_proxy) and bool(bypass(named, {"no": no_proxy}))


def shown(proxy: str) -> str:
    """The proxy as it may be printed: scheme, host and port, never a user or password."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number is not shown either
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def check(base: str, proxy: str | None) -> None:
    """Refuse (ConfigError, exit 3) a plain-http base reached through a plain-http proxy
    that is not on this machine: the key would cross one more network in clear text."""
    if proxy is None or urlsplit(base).scheme != "http":
        return
    target = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if target.scheme == "https" or is_loopback(target.hostname or ""):
        return
    raise ConfigError(
        f"ZENTRIK_API_BASE uses plain http through the proxy {shown(proxy)}: the key would "
        "travel unencrypted to it; use an https base, or add the API host to NO_PROXY"
    )


def uses_proxy(base: str) -> bool:
    """False for a plain-http base on this machine: it is always reached directly."""
    parts = urlsplit(base)
    return not (parts.scheme == "http" and is_loopback(parts.hostname or ""))
