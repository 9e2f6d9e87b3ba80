"""``zsync ui``: a local dashboard of the ledger, served by Datasette (the ``ui`` extra).

``queries`` holds the SQL (read-only; the dashboard's and the canned queries), ``page`` turns
query rows into what the page shows (headline numbers, tables), ``charts`` into Vega-Lite
specs; ``plugin`` is the Datasette plugin (the dashboard route, read-only connections) and
``app`` builds the Datasette instance. Only ``plugin`` and ``app.build`` import Datasette,
and the core CLI imports neither unless ``zsync ui`` runs.
"""

from __future__ import annotations

INSTALL_HINT = 'zsync ui needs the ui extra: pip install "zsync[ui]"'


def missing() -> str | None:
    """The name of the first package ``zsync ui`` needs that is not installed, if any."""
    import importlib.util

    for module in ("datasette", "datasette_dashboards", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return module
    return None
