"""A local stand-in for Zentrik's Signals API, with fault injection and a truth endpoint.

``zsync emulator`` serves it from the command line; :func:`start_emulator` from a program.
The test suite's helpers (``running_emulator``, the ``emulator`` fixture) are in
``tests/emulator/testing.py``: the shipped package does not import pytest.
"""

from __future__ import annotations

from zsync.emulator.config import EmulatorConfig
from zsync.emulator.server import RunningEmulator, serve_forever, start_emulator

__all__ = ["EmulatorConfig", "RunningEmulator", "serve_forever", "start_emulator"]
