"""The Kernel Gateway REST API, as a client: kernels started, watched and stopped there.

The same endpoints jupyter_server's GatewayClient calls on Jupyter Enterprise Gateway
(or Kernel Gateway, or a jupyter_server): `/api/kernelspecs`, `/api/kernels` and one
kernel's `interrupt`, `restart`, `GET` and `DELETE`. HTTP goes through httpx; every
failure becomes a KernelError whose code says which kind it was (docs/errors.md):
`gateway_unreachable` (no connection), `gateway_timeout` (no answer in time),
`gateway_error` (an HTTP error status; the gateway's own reason is in the message).
"""

from __future__ import annotations

import contextlib
import getpass
from typing import Any
from urllib.parse import quote

import httpx

from .events import KernelError
from .gateway_target import GatewayTarget

GONE = object()
"""`kernel_model`'s answer when the gateway no longer has the kernel (404)."""


class GatewayRest:
    """One gateway's REST endpoints over one pooled HTTP client."""

    def __init__(self, target: GatewayTarget) -> None:
        self.target = target
        self._http = httpx.AsyncClient(headers=target.headers, timeout=target.timeout)

    async def kernelspecs(self) -> dict[str, Any]:
        """`{"default": name, "kernelspecs": {name: {...}}}` as the gateway lists them."""
        return await self._call("GET", "/api/kernelspecs")

    async def start_kernel(self, kernel_name: str, timeout: float) -> dict[str, Any]:
        """Start a kernel of that kernelspec; its model (`id`, `execution_state`, …).

        KERNEL_USERNAME is sent as GatewayClient sends it: Enterprise Gateway refuses
        a start without a user it may run kernels for.
        """
        body = {"name": kernel_name, "env": {"KERNEL_USERNAME": getpass.getuser()}}
        model = await self._call("POST", "/api/kernels", json=body, timeout=timeout)
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            raise KernelError("gateway_error", f"the gateway started no kernel: {model!r}")
        return model

    async def kernel_model(self, kernel_id: str) -> dict[str, Any] | object:
        """The kernel's model, or GONE when the gateway answers 404 for it."""
        try:
            return await self._call("GET", self._kernel_path(kernel_id))
        except _NotFound:
            return GONE

    async def interrupt(self, kernel_id: str) -> None:
        await self._call("POST", self._kernel_path(kernel_id, "/interrupt"))

    async def restart(self, kernel_id: str, timeout: float) -> None:
        await self._call("POST", self._kernel_path(kernel_id, "/restart"), timeout=timeout)

    async def delete(self, kernel_id: str) -> None:
        """Shut the kernel down; one the gateway no longer has is already gone."""
        with contextlib.suppress(_NotFound):
            await self._call("DELETE", self._kernel_path(kernel_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _kernel_path(kernel_id: str, tail: str = "") -> str:
        return f"/api/kernels/{quote(kernel_id, safe='')}{tail}"

    async def _call(
        self, method: str, path: str, *, json: Any = None, timeout: float | None = None
    ) -> Any:
        what = f"{method} {path}"
        try:
            response = await self._http.request(
                method,
                self.target.http_url(path),
                json=json,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            wait = timeout if timeout is not None else self.target.timeout
            raise KernelError(
                "gateway_timeout",
                f"the gateway at {self.target.url} did not answer {what} within {wait:g} s",
            ) from None
        except httpx.HTTPError as exc:
            raise KernelError(
                "gateway_unreachable", f"cannot reach the gateway at {self.target.url}: {exc}"
            ) from None
        if response.status_code == 404 and method != "POST":
            raise _NotFound(what)
        if response.status_code >= 400:
            raise KernelError(
                "gateway_error",
                f"the gateway refused {what}: HTTP {response.status_code} {_reason(response)}",
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise KernelError("gateway_error", f"{what}: the answer is not JSON") from None


class _NotFound(Exception):
    """A 404 for a kernel: callers decide whether that means gone."""


def _reason(response: httpx.Response) -> str:
    """jupyter_server's `{"reason", "message"}` error body, else the status phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = body.get("reason") or body.get("message")
        if isinstance(text, str) and text:
            return f"({text})"
    return f"({response.reason_phrase})"
