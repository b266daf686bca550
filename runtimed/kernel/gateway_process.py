"""A kernel the daemon owns on a Kernel Gateway: started, restarted, interrupted,
watched and stopped through the gateway's REST API, reached through its WebSocket.

It stands where a local `KernelProcess` stands (the session does not tell them
apart); death is learnt from the gateway's kernel model, polled: a 404 or an
`execution_state` of `dead`. A gateway that cannot be reached for a while is the
transport's to judge (its reconnect window), not the poll's.
"""

from __future__ import annotations

from typing import Any

import anyio
import structlog
from jupyter_client.session import Session

from .events import KernelError
from .gateway_rest import GONE, GatewayRest
from .gateway_target import GatewayTarget
from .gateway_transport import GatewayTransport
from .process import Wiring
from .transport import KernelTransport

log = structlog.get_logger(__name__)


class GatewayProcess:
    """One kernel on a gateway, from its start to its DELETE."""

    connection_file: str | None = None  # no file: the gateway holds the connection info

    def __init__(
        self,
        target: GatewayTarget,
        kernel_name: str,
        *,
        startup_timeout: float = 60.0,
        logger: Any = log,
    ) -> None:
        self.target = target
        self.kernel_name = kernel_name
        self.remote_id: str | None = None
        self._rest = GatewayRest(target)
        self._startup_timeout = startup_timeout
        # One Jupyter session for every connection: msg_ids never start over, and a
        # reconnect with the same session id gets what the gateway buffered.
        self._session = Session(username="runtimed")
        self._log = logger

    async def start(self, cwd: str | None) -> None:
        """POST /api/kernels; `cwd` is the daemon's, not the gateway host's: not sent."""
        model = await self._rest.start_kernel(self.kernel_name, self._startup_timeout)
        self.remote_id = model["id"]
        self._log = self._log.bind(gateway_kernel=self.remote_id)
        self._log.info("gateway_kernel_started", gateway=self.target.url)

    async def restart(self) -> None:
        await self._rest.restart(self._id(), self._startup_timeout)

    async def interrupt(self) -> None:
        await self._rest.interrupt(self._id())

    async def exited(self) -> str:
        """Poll the gateway's model of the kernel until it says the kernel is gone."""
        kernel_id = self._id()
        while True:
            try:
                model = await self._rest.kernel_model(kernel_id)
            except KernelError as exc:  # unreachable for now: the transport decides
                self._log.debug("gateway_poll_failed", reason=exc.message)
            else:
                if model is GONE:
                    return f"the gateway no longer has kernel {kernel_id}"
                if isinstance(model, dict) and model.get("execution_state") == "dead":
                    return f"the gateway reports kernel {kernel_id} dead"
            await anyio.sleep(self.target.poll_interval)

    async def stop(self, *, now: bool) -> None:
        """DELETE the kernel (the gateway's own shutdown escalation); never raises."""
        try:
            if self.remote_id is not None:
                await self._rest.delete(self.remote_id)
                self._log.info("gateway_kernel_deleted")
        except KernelError as exc:
            self._log.warning("gateway_kernel_not_deleted", reason=exc.message)
        finally:
            self.remote_id = None
            await self._rest.aclose()

    def transport(self, previous: KernelTransport | None, wiring: Wiring) -> KernelTransport:
        """A fresh WebSocket transport to the kernel (same session as before)."""
        return GatewayTransport(
            self.target,
            self._id(),
            self._session,
            on_reconnected=wiring.on_reconnected,
            logger=wiring.logger,
        )

    def _id(self) -> str:
        if self.remote_id is None:
            raise KernelError("no_kernel", "the gateway kernel is not running")
        return self.remote_id
