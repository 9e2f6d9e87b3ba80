"""``zsync ui``: serve the ledger's dashboard (Datasette, the ``ui`` extra) read-only."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from zsync import config
from zsync.errors import ConfigError, UsageError


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"--host {host} --port {port}: cannot listen there: {exc.strerror}"
        ) from None
    sock.listen(128)
    return sock


@click.command()
@click.option(
    "--ledger",
    type=click.Path(path_type=Path),
    help="Ledger file (env ZSYNC_LEDGER; default ./zsync.db).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
def ui(ledger: Path | None, host: str, port: int) -> None:
    """A local dashboard of the ledger in the browser: runs, processing times, failure
    causes, items that need a person. Reads only; a push can run alongside. Needs the ui
    extra: pip install "zsync[ui]".

    \b
    Example:
      zsync ui --ledger /var/lib/zsync/tickets.db
    """
    from zsync import ui as ui_package

    if ui_package.missing() is not None:
        raise ConfigError(ui_package.INSTALL_HINT)
    path = Path(ledger or os.environ.get("ZSYNC_LEDGER") or config.DEFAULT_LEDGER)
    import uvicorn

    from zsync.ui.app import build, check

    check(path)  # a missing or unusable ledger is refused here, in one line (exit 5)

    app = build(path).app()
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"zsync ui: serving {path.resolve()} read-only at http://{shown}:{sock.getsockname()[1]}/ "
        "(Ctrl-C to stop)"
    )
    if not config.is_loopback(host):
        click.echo(
            f"warning: listening on {host}: anyone who can reach this port can read the ledger",
            err=True,
        )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])
