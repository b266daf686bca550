"""A second "host" on loopback: OpenSSH's sshd on 127.0.0.2, reached only with a throwaway
key, and a daemon (a real process) whose kernelspec launches kernels there through
gateway_provisioners' DistributedProvisioner, exactly as it would launch them on
another machine.

The daemon gets its own HOME (paramiko reads the client key and known_hosts from
~/.ssh) and JUPYTER_PATH (the ssh kernelspec); the "remote" sessions get their own
TMPDIR, runtime and IPython dirs through sshd's SetEnv.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import quick_settings, short_socket_dir
from tests.reliability.conftest import DaemonProcess

SSHD = Path("/usr/sbin/sshd")
SSH = shutil.which("ssh") or "/usr/bin/ssh"
REMOTE_ADDRESS = "127.0.0.2"  # loopback, but not one of this host's own addresses
KERNEL_NAME = "ssh_python"
UNREACHABLE_KERNEL_NAME = "ssh_unreachable"  # its host, 127.0.0.3, runs no sshd
UNREACHABLE_ADDRESS = "127.0.0.3"
PRIVSEP_DIR = Path("/run/sshd")  # OpenSSH's privilege separation directory


@dataclass
class SshHost:
    """The "remote" machine: its sshd, how to log in, and its own directories."""

    address: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    root: Path  # the remote side's TMPDIR, runtime dir, kernel logs
    sshd_log: Path

    def run(self, command: str) -> str:
        """Run a shell command on the host over ssh (OpenSSH's client, our key only)."""
        done = subprocess.run(
            [
                SSH,
                "-p",
                str(self.port),
                "-i",
                str(self.client_key),
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                f"{self.user}@{self.address}",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"ssh {command!r}: {done.stderr}"
        return done.stdout

    def kernel_processes(self) -> list[psutil.Process]:
        """Kernel launchers started on this host (they carry its TMPDIR, from SetEnv)."""
        found = []
        for proc in psutil.process_iter(["cmdline", "environ"]):
            env = proc.info["environ"] or {}
            if env.get("TMPDIR") == str(self.root / "tmp") and "launch_ipykernel.py" in " ".join(
                proc.info["cmdline"] or []
            ):
                found.append(proc)
        return found


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> list[str]:
    """A fresh key pair; returns the public key's type and data."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.with_suffix(".pub").read_text().split()[:2]


def _wait_listening(proc: subprocess.Popen, host: SshHost, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"sshd exited: {host.sshd_log.read_text()}"
        try:
            with socket.create_connection((host.address, host.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd not listening: {host.sshd_log.read_text()}") from None
            time.sleep(0.02)


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    """sshd on a free port of 127.0.0.2, with a throwaway host key and client key pair."""
    tmp_path = tmp_path_factory.mktemp("ssh-host")
    if not SSHD.exists():
        pytest.fail(
            f"OpenSSH's sshd ({SSHD}) is missing: `make sshd` installs Debian's openssh-server"
        )
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        pytest.fail(f"sshd needs its privilege separation directory {PRIVSEP_DIR}: {exc}")
    base = tmp_path / "sshd"
    remote = tmp_path / "remote"
    for path in (base, remote / "tmp", remote / "runtime", remote / "ipython", remote / "logs"):
        path.mkdir(parents=True)
    host_key = _keygen(base / "host_key")
    client_key = base / "client_key"
    (base / "authorized_keys").write_text(" ".join(_keygen(client_key)) + "\n")
    port = _free_port(REMOTE_ADDRESS)
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[{REMOTE_ADDRESS}]:{port} {' '.join(host_key)}\n")
    host = SshHost(
        address=REMOTE_ADDRESS,
        port=port,
        user=psutil.Process().username(),
        client_key=client_key,
        known_hosts=known_hosts,
        root=remote,
        sshd_log=base / "sshd.log",
    )
    config = base / "sshd_config"
    config.write_text(
        f"ListenAddress {REMOTE_ADDRESS}:{port}\n"
        f"HostKey {base / 'host_key'}\n"
        f"PidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "StrictModes no\n"  # the keys live under the world-writable /tmp
        "UsePAM no\n"
        "LogLevel VERBOSE\n"
        f"SetEnv TMPDIR={remote / 'tmp'} JUPYTER_RUNTIME_DIR={remote / 'runtime'}"
        f" IPYTHONDIR={remote / 'ipython'}\n"
    )
    with host.sshd_log.open("w") as log:
        proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        _wait_listening(proc, host)
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        for leftover in host.kernel_processes():
            leftover.kill()


def install_ssh_kernelspec(prefix: Path, name: str, address: str) -> Path:
    """The kernelspec `jupyter-ssh-spec` writes, with this interpreter on the host.

    The generated argv starts with plain `python` (the host's PATH); root may launch
    only when the provisioner's default `unauthorized_users` (root) is lifted.
    """
    subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-ssh-spec")),
            "install",
            f"--prefix={prefix}",
            f"--kernel-name={name}",
            "--display-name=Python over SSH",
            f"--remote-hosts={address}",
        ],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    spec_file = prefix / "share" / "jupyter" / "kernels" / name / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["argv"][0] = sys.executable
    spec["metadata"]["kernel_provisioner"]["config"]["unauthorized_users"] = []
    spec_file.write_text(json.dumps(spec, indent=2))
    return spec_file


@pytest.fixture(scope="module")
def remote_daemon(
    ssh_host: SshHost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """A daemon process whose `ssh_python` kernelspec launches on `ssh_host` (one per
    module: its start is most of a test's set-up; each test uses its own room)."""
    root = tmp_path_factory.mktemp("remote-daemon")
    home = root / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    shutil.copy(ssh_host.client_key, home / ".ssh" / "id_ed25519")
    shutil.copy(ssh_host.known_hosts, home / ".ssh" / "known_hosts")
    install_ssh_kernelspec(root / "local", KERNEL_NAME, ssh_host.address)
    install_ssh_kernelspec(root / "local", UNREACHABLE_KERNEL_NAME, UNREACHABLE_ADDRESS)
    sock_dir = short_socket_dir()
    settings = quick_settings(root / "data", sock_dir)
    env = {
        "HOME": str(home),
        "JUPYTER_PATH": str(root / "local" / "share" / "jupyter"),
        "GP_SSH_PORT": str(ssh_host.port),
        "GP_RESPONSE_IP": "127.0.0.1",
        "GP_RESPONSE_PORT": str(_free_port("127.0.0.1")),
        "GP_KERNEL_LOG_DIR": str(ssh_host.root / "logs"),
    }
    daemon = DaemonProcess(
        settings,
        root / "daemon.log",
        {"room_grace": settings.room_grace, "save_debounce": settings.save_debounce},
    )
    with pytest.MonkeyPatch.context() as patch:  # the daemon process inherits it
        for name, value in env.items():
            patch.setenv(name, value)
        asyncio.run(daemon.start())
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


def kernel_logs(host: SshHost) -> str:
    """What the kernel launchers on the host wrote (their listeners log every signal)."""
    return "\n".join(p.read_text() for p in sorted((host.root / "logs").glob("*.log")))
