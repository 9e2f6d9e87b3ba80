"""Starting and stopping an emulator: in a background thread for tests, in the foreground for
the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from zsync.config import DEV_API_KEY
from zsync.emulator.config import EmulatorConfig
from zsync.emulator.faults import FaultInjector
from zsync.emulator.handler import App, HttpServer
from zsync.emulator.state import EmulatorState

# How often the accept loop checks for stop(); bounds how long stop() takes.
_POLL_INTERVAL = 0.05


def _build(
    config: EmulatorConfig, access_log: Callable[[str], None] | None = None
) -> tuple[HttpServer, App]:
    faults = FaultInjector(config)
    app = App(config=config, state=EmulatorState(config, faults), faults=faults)
    app.access_log = access_log
    return HttpServer((config.host, config.port), app), app


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class RunningEmulator:
    """An emulator serving from a daemon thread; ``url`` is the API base zsync uses."""

    def __init__(self, server: HttpServer, app: App) -> None:
        self._server = server
        self._app = app
        self.config = app.config
        self.state = app.state
        port = server.server_address[1]
        self.root = f"http://{_host_for_url(self.config.host)}:{port}"
        self.url = f"{self.root}/api"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"zsync-emulator-{port}",
            daemon=True,
        )
        self._stopped = False

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose when configured with 0)."""
        return int(self._server.server_address[1])

    @property
    def inflight(self) -> int:
        """API requests being answered right now."""
        return self._app.inflight.count

    def _start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every connection; waits up to 5 s for the thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        # Pooled keep-alive connections would otherwise still be answered after stop().
        self._server.close_connections()
        self._thread.join(timeout=5)

    def truth(self) -> dict[str, Any]:
        """The state's truth (:meth:`EmulatorState.truth`) at this moment."""
        return self.state.truth()

    def set_faults(self, **changes: Any) -> None:
        """Change live settings mid-run, all or none; TypeError for a setting that is fixed at
        start, ValueError for a value out of range."""
        with self.state.lock:
            self.config.update(**changes)

    def reset(self) -> None:
        """An empty workspace and a reseeded fault generator, as if just started."""
        self.state.reset()
        self._app.faults.reset()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_emulator(config: EmulatorConfig | None = None, **overrides: Any) -> RunningEmulator:
    """Serve in a background daemon thread; returns once the socket is listening."""
    base = config or EmulatorConfig()
    # A copy, so set_faults on one instance never leaks into a config another test reuses.
    effective = dataclasses.replace(base, **overrides)
    server, app = _build(effective)
    running = RunningEmulator(server, app)
    running._start()
    return running


@contextlib.contextmanager
def running(config: EmulatorConfig | None = None, **overrides: Any) -> Iterator[RunningEmulator]:
    """An emulator for the ``with`` block (:func:`start_emulator`), stopped when it ends."""
    emulator = start_emulator(config, **overrides)
    try:
        yield emulator
    finally:
        emulator.stop()


def listening_line(config: EmulatorConfig, url: str) -> str:
    """The line announcing the URL; it names the key only when it is the documented dev key."""
    shown = config.api_key if config.api_key == DEV_API_KEY else "custom key"
    return f"zsync emulator listening on {url} (key: {shown})"


def _write_port_file(path: Path, port: int) -> None:
    # Written whole and renamed, so a script polling for the file never reads half a number.
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{port}\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def serve_forever(
    config: EmulatorConfig,
    *,
    announce: Callable[[str], None] | None = None,
    port_file: Path | None = None,
    access_log: Callable[[str], None] | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM; both stop cleanly."""
    server, _app = _build(config, access_log)
    try:
        port = int(server.server_address[1])
        url = f"http://{_host_for_url(config.host)}:{port}/api"
        if port_file is not None:
            _write_port_file(port_file, port)
        line = listening_line(config, url)
        if announce is None:
            print(line, flush=True)
        else:
            announce(line)

        def stop(signum: int, frame: FrameType | None) -> None:
            # Ask the serving loop to end at its next poll. Raising from the handler instead
            # could land inside socketserver's request handling, which swallows exceptions
            # and serves on (a SIGTERM ignored under load).
            threading.Thread(target=server.shutdown, name="emulator-stop", daemon=True).start()

        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.serve_forever(poll_interval=_POLL_INTERVAL)
        except KeyboardInterrupt:
            pass  # a Ctrl-C that came before the handler was set
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    finally:
        server.server_close()
        server.close_connections()
