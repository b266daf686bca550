"""The usual cast of a bridge test: two clients on one room with a real kernel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtimed.client import Client
from tests.conftest import RunningDaemon

NOTEBOOK = "nb-bridge"


@pytest.fixture
async def pair(running: RunningDaemon) -> AsyncIterator[tuple[Client, Client]]:
    """An actor (runs code) and an observer that only syncs the doc, on one room."""
    async with running.kernel_pair(NOTEBOOK) as pair:
        yield pair
