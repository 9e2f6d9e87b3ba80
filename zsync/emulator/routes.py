"""The emulated API's route table and query-parameter rules."""

from __future__ import annotations

import re
from urllib.parse import unquote

from zsync.emulator.validation import ApiFailure

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# What a single-page web front answers for an unknown route while the API behind it starts;
# the template retries a GET 404 whose body mentions static/index.html.
WARMUP_PAGE = (
    b'<!doctype html><html><head><meta charset="utf-8"><title>Zentrik</title></head>'
    b'<body><div id="root"></div><script src="/static/index.html.js"></script>'
    b"<!-- served from static/index.html while the API starts --></body></html>"
)


# A route is (template, {method: (handler name, scope)}); scope "" = any valid key,
# None = no auth at all.
Route = tuple[str, dict[str, tuple[str, str | None]]]
ROUTES: list[tuple[re.Pattern[str], Route]] = [
    (re.compile(r"/api/readyz"), ("/api/readyz", {"GET": ("_readyz", None)})),
    (
        re.compile(r"/api/external/v1/auth/context"),
        ("/api/external/v1/auth/context", {"GET": ("_auth_context", "")}),
    ),
    (
        re.compile(r"/api/external/v1/signals"),
        (
            "/api/external/v1/signals",
            {"GET": ("_list", "signals:read"), "POST": ("_create", "signals:write")},
        ),
    ),
    (
        re.compile(r"/api/external/v1/signals/([^/]+)"),
        (
            "/api/external/v1/signals/{id}",
            {
                "GET": ("_get", "signals:read"),
                "PATCH": ("_patch", "signals:write"),
                "DELETE": ("_delete", "signals:delete"),
            },
        ),
    ),
    (
        re.compile(r"/api/external/v1/signals/([^/]+)/process"),
        ("/api/external/v1/signals/{id}/process", {"POST": ("_process", "signals:write")}),
    ),
]


def match(path: str) -> tuple[str | None, dict[str, tuple[str, str | None]], tuple[str, ...]]:
    """The route ``path`` falls on: its template, its methods (handler name and scope) and the
    URL-decoded ids in it; ``(None, {}, ())`` for a path the API does not have."""
    for pattern, (template, methods) in ROUTES:
        found = pattern.fullmatch(path)
        if found:
            return template, methods, tuple(unquote(g) for g in found.groups())
    return None, {}, ()


def int_param(values: dict[str, list[str]], name: str, default: int, *, minimum: int) -> int:
    """The query parameter ``name`` as an integer (the last one when repeated), ``default`` when
    absent; a 400 ``invalid_parameter`` ApiFailure when it is not an integer >= ``minimum``."""
    if name not in values:
        return default
    raw = values[name][-1].strip()
    try:
        number = int(raw)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ApiFailure(
            400, "invalid_parameter", f"{name} must be an integer >= {minimum}", field=name
        )
    return number
