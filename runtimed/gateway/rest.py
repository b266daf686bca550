"""The Kernel Gateway REST API, as jupyter_server's GatewayClient calls it.

Paths, bodies, status codes and error bodies follow jupyter_server's own handlers
(services/kernels/handlers.py, services/kernelspecs/handlers.py): errors are
`{"message": ..., "reason": null}`, a missing or wrong token is 403, an unknown
kernel 404 "Kernel does not exist: <id>", a body that is not JSON 400 "Invalid JSON
in body of request".
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from websockets.http11 import Response

from .. import __version__
from ..daemon.room_requests import DEFAULT_KERNEL, gateway_target
from ..errors import RequestFailed
from ..kernel import KernelError
from ..wire import messages as m
from .httpio import ApiError, BodyRequest, json_response, raw_response
from .kernels import GatewayKernel, GatewayKernels

_NAME = r"[\w.\-%]+"
_KERNEL = re.compile(r"^/api/kernels/([^/]+)(?:/(interrupt|restart|channels))?$")
_SPEC = re.compile(rf"^/api/kernelspecs/({_NAME})$")
_RESOURCE = re.compile(rf"^/kernelspecs/({_NAME})/([A-Za-z0-9][A-Za-z0-9._-]*)$")


def is_gateway_path(path: str) -> bool:
    """The paths this API answers (the listener routes them here)."""
    return path == "/api" or path.startswith(("/api/", "/kernelspecs/"))


def channels_kernel(path: str) -> str | None:
    """The kernel id of a `/api/kernels/{id}/channels` path, else None."""
    match = _KERNEL.match(path)
    return unquote(match.group(1)) if match and match.group(2) == "channels" else None


class RestApi:
    """Answers one HTTP request; `None` lets a WebSocket upgrade to `channels` go ahead."""

    def __init__(self, kernels: GatewayKernels) -> None:
        self.kernels = kernels
        self.specs = KernelSpecManager()

    async def handle(self, request: BodyRequest | Any, path: str) -> Response | None:
        try:
            return await self._route(request, path)
        except ApiError as exc:
            return exc.response()

    async def _route(self, request: Any, path: str) -> Response | None:
        method = request.method
        if path in ("/api", "/api/"):
            _allow(method, "GET")
            return json_response(200, {"version": __version__})
        if path == "/api/kernelspecs":
            _allow(method, "GET")
            return json_response(200, await self._all_specs())
        if match := _SPEC.match(path):
            _allow(method, "GET")
            return json_response(200, await self._spec(unquote(match.group(1))))
        if match := _RESOURCE.match(path):
            _allow(method, "GET")
            return await self._resource(unquote(match.group(1)), match.group(2))
        if path == "/api/kernels":
            if method == "GET":
                return json_response(200, [k.model() for k in self.kernels.all()])
            _allow(method, "POST")
            return await self._start(_json_body(request))
        if match := _KERNEL.match(path):
            return await self._kernel_action(method, unquote(match.group(1)), match.group(2))
        raise ApiError(404)

    async def _kernel_action(self, method: str, kernel_id: str, action: str | None) -> Any:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            raise ApiError(404, f"Kernel does not exist: {kernel_id}")
        if action == "channels":
            _allow(method, "GET")
            return None  # the WebSocket handshake goes on
        if action is None:
            if method == "GET":
                return json_response(200, kernel.model())
            _allow(method, "DELETE")
            await self.kernels.shutdown(kernel)
            return json_response(204, None)
        _allow(method, "POST")
        if action == "interrupt":
            await _room_action(kernel, m.InterruptKernel(), "Exception interrupting kernel")
            return json_response(204, None)
        await _restart(self.kernels, kernel)
        return json_response(200, kernel.model())

    async def _start(self, body: dict[str, Any] | None) -> Response:
        body = body or {}
        name = body.get("name") or DEFAULT_KERNEL
        if not isinstance(name, str):
            raise ApiError(400, "name must be a kernelspec name (a string)")
        env = body.get("env") or {}
        cwd = env.get("KERNEL_WORKING_DIR") if isinstance(env, dict) else None
        try:
            kernel = await self.kernels.start(name, cwd if isinstance(cwd, str) else None)
        except RequestFailed as exc:
            raise ApiError(500, f"Kernel {name!r} failed to start: {exc.message}") from None
        location = f"/api/kernels/{kernel.id}"
        return json_response(201, kernel.model(), {"Location": location})

    # --- kernelspecs -------------------------------------------------------------------

    async def _all_specs(self) -> dict[str, Any]:
        upstream = await self._upstream_specs()
        if upstream is not None:
            return upstream
        found = await asyncio.to_thread(self.specs.get_all_specs)
        return {
            "default": DEFAULT_KERNEL,
            "kernelspecs": {
                name: _spec_model(name, info["spec"], info["resource_dir"])
                for name, info in found.items()
            },
        }

    async def _spec(self, name: str) -> dict[str, Any]:
        upstream = await self._upstream_specs()
        if upstream is not None:
            spec = (upstream.get("kernelspecs") or {}).get(name)
            if not isinstance(spec, dict):
                raise ApiError(404, f"Kernel spec {name} not found")
            return spec
        try:
            spec = await asyncio.to_thread(self.specs.get_kernel_spec, name)
        except NoSuchKernel:
            raise ApiError(404, f"Kernel spec {name} not found") from None
        return _spec_model(name, spec.to_dict(), spec.resource_dir)

    async def _upstream_specs(self) -> dict[str, Any] | None:
        """With kernels on a Kernel Gateway (--gateway-url), its kernelspecs are the ones
        a launch can name: listed as it lists them (resources are its own)."""
        target = gateway_target(self.kernels.daemon.settings)
        if target is None:
            return None
        # Imported here: httpx only for a daemon whose kernels are on a Kernel Gateway.
        from ..kernel.gateway_rest import GatewayRest

        rest = GatewayRest(target)
        try:
            specs = await rest.kernelspecs()
        except KernelError as exc:
            raise ApiError(502, f"the kernel gateway: {exc.message}") from None
        finally:
            await rest.aclose()
        if not isinstance(specs, dict):
            raise ApiError(502, "the kernel gateway's kernelspecs are not a JSON object")
        return specs

    async def _resource(self, name: str, file_name: str) -> Response:
        try:
            spec = await asyncio.to_thread(self.specs.get_kernel_spec, name)
        except NoSuchKernel:
            raise ApiError(404, f"Kernel spec {name} not found") from None
        path = Path(spec.resource_dir) / file_name
        if not path.is_file():
            raise ApiError(404, f"Kernel spec {name} has no resource {file_name}")
        data = await asyncio.to_thread(path.read_bytes)
        kind = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        return raw_response(200, data, kind)


def _spec_model(name: str, spec: dict[str, Any], resource_dir: str) -> dict[str, Any]:
    """jupyter_server's kernelspec model; resources at `/kernelspecs/<name>/<file>`."""
    resources: dict[str, str] = {}
    folder = Path(resource_dir)
    for file_name in ("kernel.js", "kernel.css"):
        if (folder / file_name).is_file():
            resources[file_name] = f"/kernelspecs/{name}/{file_name}"
    for logo in sorted(folder.glob("logo-*")):
        resources[logo.stem] = f"/kernelspecs/{name}/{logo.name}"
    return {"name": name, "spec": spec, "resources": resources}


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(405)


def _json_body(request: Any) -> dict[str, Any] | None:
    """jupyter_server's `get_json_body`: None for no body, 400 when it is not JSON."""
    body = getattr(request, "body", b"").strip()
    if not body:
        return None
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid JSON in body of request") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the body must be a JSON object")
    return value


async def _room_action(kernel: GatewayKernel, action: Any, failure: str) -> None:
    try:
        await kernel.room.handle_request(None, action)
    except RequestFailed as exc:
        raise ApiError(500, f"{failure}: {exc.message}") from None


async def _restart(kernels: GatewayKernels, kernel: GatewayKernel) -> None:
    try:
        await kernels.restart(kernel)
    except RequestFailed as exc:
        raise ApiError(500, f"Exception restarting kernel: {exc.message}") from None
