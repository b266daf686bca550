"""A daemon whose kernels run on a real Jupyter Enterprise Gateway on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from runtimed.client import Client
from runtimed.config import Settings
from tests.conftest import RunningDaemon
from tests.remote_gateway.enterprise_gateway import EnterpriseGateway

NOTEBOOK = "nb-remote"


def gateway_settings(settings: Settings, url: str, token: str | None) -> Settings:
    """Kernels from that gateway; a lost gateway is given up on after 3 s, not 30."""
    return dataclasses.replace(
        settings,
        gateway_url=url,
        gateway_token=token,
        gateway_reconnect_timeout=3.0,
        gateway_poll_interval=0.5,
    )


@pytest.fixture(scope="module")
def enterprise_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnterpriseGateway]:
    """One gateway for a module's tests (it starts in seconds, not milliseconds)."""
    gateway = EnterpriseGateway(tmp_path_factory.mktemp("eg")).start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def own_gateway(tmp_path: Path) -> Iterator[EnterpriseGateway]:
    """A gateway of the test's own, for tests that kill it."""
    gateway = EnterpriseGateway(tmp_path / "eg").start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
async def remote(
    settings: Settings, enterprise_gateway: EnterpriseGateway
) -> AsyncIterator[RunningDaemon]:
    handle = RunningDaemon(
        gateway_settings(settings, enterprise_gateway.url, enterprise_gateway.token)
    )
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def remote_pair(remote: RunningDaemon) -> AsyncIterator[tuple[Client, Client]]:
    """An actor and an observer on one room whose kernel runs on the gateway."""
    async with remote.kernel_pair(NOTEBOOK) as pair:
        yield pair
