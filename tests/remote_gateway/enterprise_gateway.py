"""Jupyter Enterprise Gateway on loopback, for the remote-kernel tests and the bench.

It runs from its own venv (`make enterprise-gateway`: .venv-eg, pinned in
tests/remote_gateway/enterprise-gateway.txt), because it needs jupyter_server<2 and
jupyter_client<7, which the project's own pins exclude. The kernels behind it are
local processes of this repo's venv (real ipykernel, real ipywidgets): what is under
test is the path through the gateway's REST and WebSocket API.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
EG_BIN = REPO / ".venv-eg" / "bin" / "jupyter-enterprisegateway"
UNBOUNDED_KERNEL = REPO / "tests" / "unbounded_iopub_kernel.py"
KERNELS = {
    "python3": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    # IOPub never drops on the kernel's side: a lost update is then the bridge's fault.
    "unbounded": [sys.executable, str(UNBOUNDED_KERNEL), "-f", "{connection_file}"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EnterpriseGateway:
    """One Enterprise Gateway process with a token, and every kernel it started."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self._kernels: set[psutil.Process] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> EnterpriseGateway:
        if not EG_BIN.exists():
            raise RuntimeError(
                f"{EG_BIN} is missing: `make enterprise-gateway` installs Enterprise Gateway "
                "in its own venv (.venv-eg)"
            )
        for name, argv in KERNELS.items():
            spec_dir = self.workdir / "kernels" / name
            spec_dir.mkdir(parents=True, exist_ok=True)
            spec = {"argv": argv, "display_name": name, "language": "python"}
            (spec_dir / "kernel.json").write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON"))}
        env |= {
            "JUPYTER_PATH": str(self.workdir),
            "JUPYTER_DATA_DIR": str(self.workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
            # Enterprise Gateway refuses kernels for root by default; CI runs as root.
            "EG_UNAUTHORIZED_USERS": "runtimed-test-nobody",
        }
        argv = [
            str(EG_BIN),
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port_retries=0",
            f"--EnterpriseGatewayApp.auth_token={self.token}",
            "--EnterpriseGatewayApp.list_kernels=True",
        ]
        with (self.workdir / "enterprise_gateway.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Enterprise Gateway did not start: {self.log_tail()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            self.get("/api/kernelspecs")
        except OSError:
            return False
        return True

    def get(self, path: str) -> object:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def kernel_ids(self) -> list[str]:
        return [k["id"] for k in self.get("/api/kernels")]  # type: ignore[union-attr]

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "enterprise_gateway.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _remember_kernels(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._kernels |= set(psutil.Process(self.proc.pid).children(recursive=True))

    def kill(self) -> None:
        """SIGKILL the gateway (its kernels live on, as they would on their hosts)."""
        assert self.proc is not None
        self._remember_kernels()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Stop the gateway, then any kernel it left behind."""
        if self.proc is not None and self.proc.poll() is None:
            self._remember_kernels()
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for kernel in self._kernels:
            with contextlib.suppress(psutil.NoSuchProcess):
                kernel.kill()
