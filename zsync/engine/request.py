"""One request to the Zentrik API and the first reading of its answer.

:class:`Requester` owns the session, the key (as a bearer auth object, never a header text
that an error could quote) and the timeouts; it sends one request, turns a failure to get a
whole answer into an exception of :mod:`zsync.errors`, judges the status and reads a JSON
object. :class:`~zsync.engine.client.ZentrikClient` adds one method per endpoint. Text that
came from the server is redacted and shortened to one line before it is put into an
exception, so an error body that echoes the key cannot leak it.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.client import HTTPException
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3.exceptions

from zsync.config import redact
from zsync.engine.answers import MAX_MESSAGE, is_header_token, json_body, shorten
from zsync.engine.failures import status_error, transport_error
from zsync.engine.proxies import session_for
from zsync.errors import ConfigError, MalformedResponse, ZsyncError
from zsync.version import __version__

USER_AGENT = f"zsync/{__version__}"

SIGNALS_PATH = "/external/v1/signals"

_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT}


class _BearerAuth(requests.auth.AuthBase):
    """Sets the bearer header as an auth object, so a ~/.netrc entry cannot replace it."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._key}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class Requester:
    """The session, key and timeouts of one API base, and the sending of one request."""

    def __init__(
        self,
        base: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        """A client of ``base`` with ``api_key``; ``session`` borrowed (not closed) if given.

        Raises ConfigError for a key that is empty or not a valid header value.
        """
        # requests would quote a malformed header value, key included, in its own error.
        if not api_key or not is_header_token(api_key):
            raise ConfigError(
                "ZENTRIK_API_KEY is empty or contains spaces, control or non-ASCII characters; "
                "copy the key again from Settings → API Keys"
            )
        self._base = base.strip().rstrip("/")
        parts = urlsplit(self._base)
        host = parts.hostname or self._base
        self._host = f"{host}:{parts.port}" if parts.port else host
        self._key = api_key
        self._auth = _BearerAuth(api_key)
        self._timeout = (connect_timeout, timeout)
        self._owns_session = session is None
        self._session = session if session is not None else session_for(self._base)
        # Set by the first request (see _prepared).
        self._template: requests.PreparedRequest | None = None
        self._url_root = ""
        # The workspace the ledger is bound to: a receipt naming another one is refused.
        self.workspace_id: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r})"

    def __enter__(self) -> Self:
        """The client itself; leaving the block closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close on leaving a ``with`` block."""
        self.close()

    def close(self) -> None:
        """Close the session, when this client opened it (a borrowed one stays open)."""
        if self._owns_session:
            self._session.close()

    # -- one request -------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, int] | None = None,
    ) -> requests.Response:
        try:
            session = self._session
            if params is None and not session.trust_env and not session.cookies:
                prepared = self._prepared(method, path, data, headers)
                return session.send(prepared, timeout=self._timeout, allow_redirects=False)
            request_headers = dict(_HEADERS)
            if data is not None:
                request_headers["Content-Type"] = "application/json"
            if headers:
                request_headers.update(headers)
            return session.request(
                method,
                self._base + path,
                data=data,
                params=params,
                headers=request_headers,
                auth=self._auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            HTTPException,
            OSError,
        ) as exc:
            # No chaining: the requests exception carries the prepared request and its headers.
            raise self._transport_error(exc) from None

    def _prepared(
        self, method: str, path: str, data: bytes | None, headers: Mapping[str, str] | None
    ) -> requests.PreparedRequest:
        """What ``Session.request`` would prepare, from headers merged once per client.

        Merging the session's settings into every request cost a fifth of the CPU of a create
        at 0 ms latency. Only used while the session holds no cookies (a server that sets one
        gets the full path, which sends it back) and reads nothing from the environment per
        request (our own sessions; a borrowed one that does keeps the full path).
        """
        if self._template is None:
            template = self._session.prepare_request(
                requests.Request(
                    "GET", self._base + SIGNALS_PATH, headers=_HEADERS, auth=self._auth
                )
            )
            # The base as requests normalises it; every path is appended already quoted.
            self._url_root = str(template.url).removesuffix(SIGNALS_PATH)
            self._template = template
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = self._url_root + path
        prepared.headers = self._template.headers.copy()
        if data is not None:
            prepared.headers["Content-Type"] = "application/json"
        if headers:
            prepared.headers.update(headers)
        prepared.prepare_body(data, None)
        prepared.prepare_cookies(requests.cookies.RequestsCookieJar())
        prepared.hooks = self._template.hooks
        return prepared

    def _transport_error(self, exc: BaseException) -> ZsyncError:
        return transport_error(exc, self._base, self._host, self._timeout, self._clean)

    # -- answers -----------------------------------------------------------------------------

    def _raise_for_status(self, resp: requests.Response, op: str, method: str) -> None:
        if 200 <= resp.status_code < 300:
            return
        raise self._status_error(resp, op, method)

    def _status_error(self, resp: requests.Response, op: str, method: str) -> ZsyncError:
        return status_error(resp, op, method, self._clean)

    def _json_object(self, resp: requests.Response, op: str) -> dict[str, Any]:
        try:
            data = json_body(resp)
        except ValueError:
            raise MalformedResponse(
                self._clean(f"{op} answered {resp.status_code} with a body that is not JSON"),
                resp.status_code,
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponse(
                self._clean(f"{op} answered {resp.status_code} with JSON that is not an object"),
                resp.status_code,
            )
        return data

    def _clean(self, text: str, *, limit: int = MAX_MESSAGE) -> str:
        return shorten(text, self._key, limit=limit)

    def _redacted(self, value: str | None) -> str | None:
        """A value the server chose (an id, a name), without the key should it echo it:
        such values are stored in the ledger and shown by export and show."""
        return None if value is None else redact(value, self._key)
