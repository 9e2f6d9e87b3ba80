"""What went wrong with a request, named in the exception tree (``zsync.errors``): a request
that got no whole answer (``transport_error``) and an answer that was not a 2xx
(``status_error``). Every text is one line, redacted by the caller's ``clean``."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from http.client import IncompleteRead, RemoteDisconnected
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from zsync.engine.answers import cause_chain, error_parts, named_signal, status_text
from zsync.engine.retry import parse_retry_after
from zsync.errors import (
    AuthError,
    ConfigError,
    Conflict,
    NotDelivered,
    RateLimited,
    RedirectRefused,
    Rejected,
    ServerUnavailable,
    TransportError,
    WarmingUp,
    ZsyncError,
)

Clean = Callable[..., str]

# A web front end answering for the API while it starts (the import template's rule).
FRONT_END_MARKER = b"static/index.html"
SERVER_UNAVAILABLE = frozenset({500, 502, 503, 504})
# The scope each operation needs, for the hint when a key is refused.
SCOPES = {
    "create": "signals:write",
    "update": "signals:write",
    "process": "signals:write",
    "get": "signals:read",
    "list": "signals:read",
    "delete": "signals:delete",
}


def transport_error(
    exc: BaseException, base: str, host: str, timeouts: tuple[float, float], clean: Clean
) -> ZsyncError:
    """The exception tree's name for a request that got no (whole) answer."""
    connect_timeout, read_timeout = timeouts
    causes = cause_chain(exc)

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(cause, kinds) for cause in causes)

    if has(ssl.SSLCertVerificationError):
        return ConfigError(
            clean(
                f"the TLS certificate of {host} could not be verified; "
                "check ZENTRIK_API_BASE (host name, https)"
            )
        )
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return ConfigError(clean(f"ZENTRIK_API_BASE {base!r} is not usable"))
    if isinstance(exc, requests.ConnectTimeout):
        return NotDelivered(clean(f"could not connect to {host} within {connect_timeout:g}s"))
    if has(ConnectionRefusedError):
        return NotDelivered(clean(f"connection refused by {host} (is the API running?)"))
    if has(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return NotDelivered(clean(f"cannot resolve the API host {host}"))
    if isinstance(exc, requests.Timeout) or has(urllib3.exceptions.ReadTimeoutError, TimeoutError):
        message = f"timed out after {read_timeout:g}s waiting for the API at {host}"
    elif has(RemoteDisconnected):
        message = f"the API at {host} closed the connection without answering"
    elif has(ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        message = f"connection reset by the API ({host})"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError) or has(
        IncompleteRead, urllib3.exceptions.ProtocolError
    ):
        message = f"the connection to {host} broke off in the middle of an answer"
    elif has(ssl.SSLError):
        message = f"TLS handshake with {host} failed"
    elif isinstance(exc, requests.exceptions.ProxyError):
        message = f"could not reach {host} through the configured proxy"
    else:
        message = f"could not reach the API at {host} ({type(causes[-1]).__name__})"
    return TransportError(clean(message))


def status_error(resp: requests.Response, op: str, method: str, clean: Clean) -> ZsyncError:
    """The exception tree's name for a non-2xx answer; its text one redacted line."""
    status = resp.status_code
    if 300 <= status < 400:
        location = resp.headers.get("Location", "")
        target = urlsplit(location).hostname if location else None
        where = f" to {target}" if target else " to another path" if location else ""
        return RedirectRefused(
            clean(
                f"API answered {status} redirect{where}; redirects are not followed "
                "(check ZENTRIK_API_BASE: https, and the /api suffix)"
            ),
            status,
        )
    if status in (401, 403):
        detail = clean(status_text(status, *error_parts(resp)), limit=110)
        if status == 401:
            hint = "check ZENTRIK_API_KEY"
        elif op in SCOPES:
            hint = f"{op} needs a key with the {SCOPES[op]} scope"
        else:
            hint = "check the key's scopes in Settings → API Keys"
        return AuthError(clean(f"the API refused the key ({detail}); {hint}"))
    if status == 429:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        suffix = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        detail = clean(status_text(status, *error_parts(resp)), limit=170)
        return RateLimited(detail + suffix, retry_after=retry_after)
    if status in SERVER_UNAVAILABLE:
        return ServerUnavailable(clean(status_text(status, *error_parts(resp))), status)
    if status == 404 and method in ("GET", "DELETE") and FRONT_END_MARKER in resp.content:
        return WarmingUp(
            "404 from the web front end instead of the API (it is probably still starting)",
            status,
        )
    text = clean(status_text(status, *error_parts(resp)))
    if status == 409:
        return Conflict(text, public_id=named_signal(resp))
    return Rejected(text, status)
