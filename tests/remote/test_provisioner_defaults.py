"""The daemon's defaults for remote provisioners, and how a remote kernel's end is told."""

from __future__ import annotations

import os

import pytest
from jupyter_client.provisioning import LocalProvisioner

from runtimed.kernel.process import REMOTE_SOCKET_TIMEOUT, gone_reason, prepare_provisioners


def test_the_response_socket_is_made_non_blocking_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REMOTE_SOCKET_TIMEOUT, raising=False)
    prepare_provisioners()
    assert os.environ[REMOTE_SOCKET_TIMEOUT] == "0"
    monkeypatch.setenv(REMOTE_SOCKET_TIMEOUT, "0.5")
    prepare_provisioners()
    assert os.environ[REMOTE_SOCKET_TIMEOUT] == "0.5"


class FarAway:
    """Stands in for a remote provisioner: only its type is looked at."""


def test_a_local_exit_names_its_signal_and_a_remote_one_its_reporter() -> None:
    local = LocalProvisioner.__new__(LocalProvisioner)
    assert gone_reason(local, -9) == "exited with code -9 (SIGKILL)"
    assert gone_reason(FarAway(), 0) == "FarAway reports the kernel gone (exit code 0)"
