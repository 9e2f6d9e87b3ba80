"""The Datasette instance ``zsync ui`` serves: one ledger, read-only, with zsync's plugin,
dashboard template and canned queries. Imports Datasette, so only ``zsync ui`` imports this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zsync.ui import queries

HERE = Path(__file__).parent


def metadata() -> dict[str, Any]:
    """Datasette metadata: the title and the canned queries of the ledger database."""
    from zsync.ui.plugin import DB_NAME

    return {
        "title": "zsync ledger",
        "description": "The zsync ledger, read-only. Start at the dashboard.",
        "databases": {DB_NAME: {"queries": {q.name: q.canned() for q in queries.CANNED}}},
    }


def check(ledger: Path) -> None:
    """Refuse a missing or unusable ledger in one line (exit 5) before anything is served;
    opens it read-only, as the dashboard does, and takes no lock."""
    from zsync.ledger import reading

    with reading(ledger):
        pass


def build(ledger: Path) -> Any:
    """A Datasette serving ``ledger`` read-only (never immutable: a push may be writing it
    and the dashboard shows its runs as they finish)."""
    from datasette.app import Datasette
    from datasette.database import Database
    from datasette.plugins import pm

    from zsync.ui import plugin

    if not pm.is_registered(plugin):
        pm.register(plugin, name="zsync-ui")
    ds = Datasette(
        metadata=metadata(),
        template_dir=str(HERE / "templates"),
        static_mounts=[("-/zsync-static", str(HERE / "static"))],
        settings={
            # The dashboard's queries read every event of a large ledger once.
            "sql_time_limit_ms": 10_000,
            "suggest_facets": False,
            "allow_download": False,
        },
    )
    ds.add_database(Database(ds, path=str(ledger.resolve()), is_mutable=True), name=plugin.DB_NAME)
    return ds
