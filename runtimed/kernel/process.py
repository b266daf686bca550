"""A kernel process the daemon owns: start, restart, watch and stop it.

jupyter_client's async manager does the work (kernelspecs, provisioners, the shutdown
escalation request → SIGTERM → SIGKILL); this module turns its failures into
KernelError and its exit into a reason a person can read.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import structlog
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import KernelProvisionerBase, LocalProvisioner
from jupyter_client.session import Session

from .connection_files import runtime_connection_file
from .events import KernelError

log = structlog.get_logger(__name__)

DEFAULT_SHUTDOWN_WAIT = 4.0  # jupyter_client: SIGTERM after half of it, SIGKILL at the end
PROCESS_POLL_INTERVAL = 0.1
REMOTE_SOCKET_TIMEOUT = "GP_SOCKET_TIMEOUT"


def prepare_provisioners() -> None:
    """Defaults for remote provisioners, set before the first kernelspec lookup loads them.

    gateway_provisioners' response manager (where remote launchers send connection info)
    accepts on the daemon's event loop with a blocking timeout, GP_SOCKET_TIMEOUT (10 ms
    by default), re-armed every 0.1 ms: the loop then turns ~200 times a second instead
    of tens of thousands. 0 makes that socket non-blocking, so asyncio waits for it.
    An explicit setting wins; the package reads it once, at import.
    """
    os.environ.setdefault(REMOTE_SOCKET_TIMEOUT, "0")


class KernelProcess:
    """One launched kernel: its manager, its connection file, its exit."""

    def __init__(
        self,
        kernel_name: str,
        kernel_id: str,
        *,
        shutdown_wait: float = DEFAULT_SHUTDOWN_WAIT,
        logger: Any = log,
    ) -> None:
        self.kernel_name = kernel_name
        self._km = AsyncKernelManager(
            kernel_name=kernel_name,
            kernel_id=kernel_id,
            connection_file=str(runtime_connection_file(kernel_id)),
        )
        self._km.shutdown_wait_time = shutdown_wait
        self._log = logger

    @property
    def connection_file(self) -> str:
        return self._km.connection_file

    @property
    def remote(self) -> bool:
        """Launched by a provisioner other than jupyter_client's local one (known once
        started): its poll may not see a kernel that is frozen or cut off."""
        return not isinstance(self._km.provisioner, LocalProvisioner)

    def client(
        self, context: zmq.asyncio.Context, session: Session | None = None
    ) -> AsyncKernelClient:
        """A client on the kernel's ports; pass the previous `session` across a restart,
        so msg_ids never start over.

        The session takes the manager's current key: a provisioner may hand the restarted
        kernel new connection info (a remote launcher makes a new key per launch).
        """
        if session is None:
            return self._km.client(context=context)
        session.key = self._km.session.key
        session.signature_scheme = self._km.session.signature_scheme
        return self._km.client(context=context, session=session)

    async def start(self, cwd: str | None) -> None:
        try:
            await self._km.start_kernel(**({"cwd": cwd} if cwd is not None else {}))
        except NoSuchKernel:
            raise KernelError("no_such_kernel", missing_kernel(self.kernel_name)) from None
        except Exception as exc:
            raise KernelError("kernel_error", f"{type(exc).__name__}: {exc}") from None

    async def restart(self) -> None:
        try:
            await self._km.restart_kernel(now=False)
        except Exception as exc:
            raise KernelError("kernel_error", f"{type(exc).__name__}: {exc}") from None

    async def interrupt(self) -> None:
        try:
            await self._km.interrupt_kernel()
        except RuntimeError as exc:
            raise KernelError("kernel_error", f"interrupt failed: {exc}") from None

    async def exited(self) -> str:
        """Wait for the process to end (~0.1 s late at most) and say how it ended."""
        provisioner = self._km.provisioner
        assert provisioner is not None
        # Provisioners (local or remote) only offer poll(): no exit event to await.
        while (code := await provisioner.poll()) is None:  # noqa: ASYNC110
            await anyio.sleep(PROCESS_POLL_INTERVAL)
        return gone_reason(provisioner, code)

    async def stop(self, *, now: bool) -> None:
        """jupyter_client's escalation, bounded by the shutdown wait (+5 s after SIGKILL)."""
        try:
            if self._km.has_kernel:
                await self._km.shutdown_kernel(now=now)
            else:
                await self._km.cleanup_resources()
        except Exception:
            self._log.exception("kernel shutdown failed")


def missing_kernel(name: str) -> str:
    """Why jupyter_client found no usable kernelspec: there is none by that name, or
    the one there names a provisioner that is not installed (it reports both alike)."""
    spec_dir = KernelSpecManager().find_kernel_specs().get(name)
    if spec_dir is None:
        return f"no kernelspec named {name!r}"
    try:
        spec = json.loads((Path(spec_dir) / "kernel.json").read_text())
        provisioner = spec["metadata"]["kernel_provisioner"]["provisioner_name"]
    except (OSError, ValueError, TypeError, KeyError):
        return f"kernelspec {name!r} in {spec_dir} cannot be used"
    return (
        f"kernelspec {name!r} names the kernel provisioner {provisioner!r}, which is not"
        " installed (or failed to load: see the daemon's log)"
    )


def gone_reason(provisioner: KernelProvisionerBase, code: int | None) -> str:
    """A local process's exit code and signal; a remote provisioner's poll only knows
    that the kernel is gone (gateway_provisioners says 0), so it is named as the source."""
    if isinstance(provisioner, LocalProvisioner):
        return exit_reason(code)
    return f"{type(provisioner).__name__} reports the kernel gone (exit code {code})"


def exit_reason(code: int | None) -> str:
    """ "exited with code -9 (SIGKILL)": the signal named when there was one."""
    if code is not None and code < 0:
        try:
            return f"exited with code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exited with code {code}"
