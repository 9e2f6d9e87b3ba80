"""The migrations this zsync knows (``migrations/``), their names, and applying them.

Knowing their names needs only the directory; applying them needs sqlite-utils, which is
imported only then: opening a ledger that is up to date does not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zsync.errors import LedgerError

if TYPE_CHECKING:
    import sqlite_utils
    from sqlite_utils.migrations import Migrations


def migrations_dir() -> Path:
    """Where this zsync's migrations are: in the wheel, or beside the package in a checkout."""
    package = Path(__file__).resolve().parent.parent  # zsync/
    # In a wheel they are zsync/migrations; in a checkout, migrations/ beside zsync/.
    for candidate in (package / "migrations", package.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    raise LedgerError("zsync is installed without its migrations/ directory")


def _migration_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or migrations_dir()).glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migration_names(directory: Path | None = None) -> list[str]:
    """The migrations this zsync knows, oldest first."""
    return [path.stem for path in _migration_files(directory)]


def build_migrations(directory: Path | None = None) -> tuple[Migrations, list[str]]:
    """sqlite-utils' migration set "zsync", one migration per SQL file, and their names.
    Each migration and its record run in one transaction: a file that fails is rolled back
    whole and stays pending."""
    # sqlite-utils is imported only when there is something to migrate: opening a ledger
    # that is up to date does not pay for it.
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("zsync")
    names: list[str] = []
    for path in _migration_files(directory):
        sql = path.read_text(encoding="utf-8")

        def apply(db: sqlite_utils.Database, sql: str = sql) -> None:
            # sqlite-utils runs a script inside the open transaction (sqlite3's own
            # executescript would COMMIT first): the migration and its record stay together.
            db.executescript(sql)

        migrations(name=path.stem)(apply)
        names.append(path.stem)
    return migrations, names


__all__ = ["build_migrations", "migration_names", "migrations_dir"]
