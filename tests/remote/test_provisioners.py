"""The daemon's handling of provisioners: defaults, a remote kernel's end, a missing one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from jupyter_client.provisioning import LocalProvisioner

from runtimed.kernel.process import (
    REMOTE_SOCKET_TIMEOUT,
    gone_reason,
    missing_kernel,
    prepare_provisioners,
)


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


def test_a_kernelspec_naming_a_missing_provisioner_says_so(make_kernelspec) -> None:
    name = make_kernelspec(
        "far", [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    )
    spec_file = Path(os.environ["JUPYTER_PATH"]) / "kernels" / name / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["metadata"] = {"kernel_provisioner": {"provisioner_name": "no-such-provisioner"}}
    spec_file.write_text(json.dumps(spec))
    assert missing_kernel(name) == (
        "kernelspec 'far' names the kernel provisioner 'no-such-provisioner', which is not"
        " installed (or failed to load: see the daemon's log)"
    )
    assert missing_kernel("nothing-here") == "no kernelspec named 'nothing-here'"
