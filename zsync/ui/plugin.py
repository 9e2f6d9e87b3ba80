"""The Datasette plugin of ``zsync ui``: the dashboard page, ``/`` sent to it, the SQL
function ``zsync_cause`` and read-only connections. Registered by :func:`zsync.ui.app.build`
only (no entry point), so a plain ``datasette`` elsewhere never picks it up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from datasette import hookimpl as _hookimpl
from datasette.utils.asgi import Response

from zsync.ui import page, queries
from zsync.ui.charts import Row
from zsync.views import cause_of

_F = TypeVar("_F", bound=Callable[..., Any])
# Datasette ships no type hints; its marker keeps each hook's own signature.
hookimpl: Callable[[_F], _F] = _hookimpl

DB_NAME = "ledger"
DASHBOARD_PATH = "/-/zsync"


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str) -> None:
    """Every connection to the ledger refuses writes and knows ``zsync_cause``."""
    if database != DB_NAME:
        return
    conn.execute("PRAGMA query_only = 1")
    conn.create_function("zsync_cause", 3, cause_of, deterministic=True)


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    """The dashboard, and the front page sent to it."""
    return [(r"^/$", _front), (rf"^{DASHBOARD_PATH}$", _dashboard)]


@hookimpl
def menu_links(datasette: Any) -> list[dict[str, str]]:
    """A way back to the dashboard from every Datasette page."""
    return [{"href": datasette.urls.path(DASHBOARD_PATH), "label": "zsync dashboard"}]


async def _front(datasette: Any) -> Response:
    return Response.redirect(datasette.urls.path(DASHBOARD_PATH))


_ON_PAGE = (
    queries.RUNS,
    queries.RUN_OUTCOMES,
    queries.PROCESSING_HISTOGRAM,
    queries.PROCESSING_TREND,
    queries.STATUSES,
    queries.FAILURE_CAUSES,
    queries.FAILURE_TREND,
    queries.BOOKMARKS,
)


async def _rows(db: Any, sql: str) -> list[Row]:
    results = await db.execute(sql)
    return [dict(zip(results.columns, row, strict=True)) for row in results.rows]


async def _dashboard(datasette: Any, request: Any) -> Response:
    db = datasette.get_database(DB_NAME)
    data = {q.name: await _rows(db, q.sql) for q in _ON_PAGE}
    data["needs_a_person"] = await _rows(
        db, f"SELECT * FROM ({queries.NEEDS_PERSON.sql}) LIMIT {queries.NEEDS_PERSON_ROWS}"
    )
    data["binding"] = await _rows(db, queries.BINDING)
    built = page.build(data, await _rows(db, queries.LEASE))
    context = {
        "page": built,
        "ledger_path": db.path,
        "db": DB_NAME,
        "needs_rows": queries.NEEDS_PERSON_ROWS,
    }
    html = await datasette.render_template("zsync_dashboard.html", context, request=request)
    return Response.html(html)
