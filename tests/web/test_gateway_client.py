"""The Kernel Gateway API, driven by jupyter_server's own gateway client and managers.

GatewayClient, GatewayMappingKernelManager and GatewayKernelSpecManager are what
`jupyter lab --gateway-url` runs; here they talk to a real daemon's `--ws` port and
real ipykernel kernels.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import (
    GatewayKernelSpecManager,
    GatewayMappingKernelManager,
)
from tornado.httpclient import AsyncHTTPClient
from tornado.simple_httpclient import HTTPStreamClosedError
from traitlets.config import LoggingConfigurable
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.web.conftest import WebDaemon

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


class _Parent(LoggingConfigurable):
    """What the gateway kernelspec manager reads off its server app."""

    base_url = "/"


@pytest.fixture
def gateway_client(web: WebDaemon) -> Iterator[GatewayClient]:
    GatewayClient.clear_instance()
    client = GatewayClient.instance(
        url=f"http://127.0.0.1:{web.port}", auth_token=web.token, request_timeout=60.0
    )
    client.init_connection_args()
    yield client
    GatewayClient.clear_instance()


@pytest.fixture
async def manager(gateway_client: GatewayClient) -> AsyncIterator[GatewayMappingKernelManager]:
    km = GatewayMappingKernelManager()
    yield km
    await km.shutdown_all(now=True)


async def _fetch(web: WebDaemon, path: str, token: str | None = None, **kwargs):
    token = web.token if token is None else token
    headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
    return await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{web.port}{path}", headers=headers, raise_error=False, **kwargs
    )


async def test_kernelspecs_through_the_gateway_spec_manager(
    web: WebDaemon, gateway_client: GatewayClient
) -> None:
    ksm = GatewayKernelSpecManager(parent=_Parent())
    specs = await ksm.list_kernel_specs()
    assert specs["default"] == "python3"
    assert specs["kernelspecs"]["python3"]["spec"]["language"] == "python"
    logo = specs["kernelspecs"]["python3"]["resources"]["logo-64x64"]
    assert logo == "/kernelspecs/python3/logo-64x64.png"
    one = await ksm.get_kernel_spec("python3")
    assert one["name"] == "python3"
    png = await ksm.get_kernel_spec_resource("python3", "logo-64x64.png")
    assert png.startswith(b"\x89PNG")
    with pytest.raises(KeyError):
        await ksm.get_kernel_spec("no-such-kernel")
    assert await ksm.get_kernel_spec_resource("python3", "nothing.png") is None


async def test_start_list_interrupt_restart_delete(
    web: WebDaemon, manager: GatewayMappingKernelManager
) -> None:
    kernel_id = await manager.start_kernel(kernel_name="python3")
    model = await manager.kernel_model(kernel_id)
    assert model["name"] == "python3"
    assert model["execution_state"] in ("idle", "busy", "starting")

    listed = await manager.list_kernels()
    assert [k["id"] for k in listed] == [kernel_id]

    # The kernel is a runtimed kernel in its own room, which `runtimed ls` lists.
    assert web.daemon is not None
    rooms = web.daemon.daemon_info()["rooms"]
    room = next(r for r in rooms if r["notebook_id"] == f"gateway-{kernel_id}")
    assert room["kernel_name"] == "python3"

    await manager.interrupt_kernel(kernel_id)
    await manager.restart_kernel(kernel_id)
    model = await manager.get_kernel(kernel_id).refresh_model()
    assert model["execution_state"] in ("idle", "busy")

    await manager.shutdown_kernel(kernel_id)
    response = await _fetch(web, f"/api/kernels/{kernel_id}")
    assert response.code == 404
    assert json.loads(response.body) == {
        "message": f"Kernel does not exist: {kernel_id}",
        "reason": None,
    }
    assert json.loads((await _fetch(web, "/api/kernels")).body) == []


async def test_bad_requests_get_jupyter_servers_error_shapes(web: WebDaemon) -> None:
    forbidden = await _fetch(web, "/api/kernels", token="wrong")
    assert forbidden.code == 403
    assert json.loads(forbidden.body) == {"message": "Forbidden", "reason": None}
    assert forbidden.headers["X-Content-Type-Options"] == "nosniff"
    assert forbidden.headers["Content-Security-Policy"].startswith("default-src 'none'")

    bad_json = await _fetch(web, "/api/kernels", method="POST", body="{not json")
    assert bad_json.code == 400
    assert json.loads(bad_json.body)["message"] == "Invalid JSON in body of request"

    unknown = await _fetch(
        web, "/api/kernels/00000000-0000-0000-0000-000000000000/interrupt", method="POST", body="{}"
    )
    assert unknown.code == 404
    assert json.loads(unknown.body)["message"].startswith("Kernel does not exist")

    no_spec = await _fetch(web, "/api/kernels", method="POST", body='{"name": "nope"}')
    assert no_spec.code == 500
    assert "nope" in json.loads(no_spec.body)["message"]

    # A body over 1 MiB is not read: the connection is closed without an answer.
    with pytest.raises(HTTPStreamClosedError):
        await _fetch(web, "/api/kernels", method="POST", body="x" * (2 << 20))

    wrong_method = await _fetch(web, "/api/kernelspecs", method="DELETE")
    assert wrong_method.code == 405

    no_spec_model = await _fetch(web, "/api/kernelspecs/nope")
    assert no_spec_model.code == 404
    assert json.loads(no_spec_model.body)["message"] == "Kernel spec nope not found"

    # The kernel WebSocket: refused before any upgrade, with the same shapes.
    unknown_ws = f"ws://127.0.0.1:{web.port}/api/kernels/{'0' * 8}-0-0-0-{'0' * 12}/channels"
    for token, status in ((web.token, 404), ("wrong", 403)):
        with pytest.raises(InvalidStatus) as refused:
            await connect(unknown_ws, additional_headers={"Authorization": f"token {token}"})
        assert refused.value.response.status_code == status

    # The listener still answers, and no kernel runs.
    assert json.loads((await _fetch(web, "/api/kernels")).body) == []
    assert web.daemon is not None
    assert web.daemon.daemon_info()["kernels"] == [] or all(
        k["status"] == "dead" for k in web.daemon.daemon_info()["kernels"]
    )
