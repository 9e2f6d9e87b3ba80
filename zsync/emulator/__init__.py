"""A local stand-in for Zentrik's Signals API, with fault injection and a truth endpoint.

``zsync emulator`` serves it from the command line; tests use
:func:`zsync.emulator.testing.running_emulator` or the ``emulator`` pytest fixture.
"""

from __future__ import annotations

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.server import RunningEmulator, serve_forever, start_emulator

__all__ = ["EmulatorConfig", "RunningEmulator", "serve_forever", "start_emulator"]
