from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.emulator.testing import emulator_fixture
from zsync.config import DEV_API_KEY

# Named apart from the shared `emulator` fixture so a top-level conftest can import that one
# without the two shadowing each other.
emu = emulator_fixture(name="emu")


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {DEV_API_KEY}"
    yield session
    session.close()
