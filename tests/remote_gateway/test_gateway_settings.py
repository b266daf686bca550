"""How kernels on a gateway are configured, and what the daemon's own Kernel Gateway API
lists when its kernels come from one."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from runtimed.config import Settings
from runtimed.kernel import KernelError
from runtimed.kernel.gateway_target import GatewayTarget
from tests.remote_gateway.conftest import gateway_settings
from tests.remote_gateway.enterprise_gateway import EnterpriseGateway
from tests.web.conftest import WebDaemon


def test_the_environment_names_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIMED_GATEWAY_URL", "http://gateway.example:8888")
    monkeypatch.setenv("RUNTIMED_GATEWAY_TOKEN", "a-token-of-some-length")
    settings = Settings()
    assert settings.gateway_url == "http://gateway.example:8888"
    assert settings.gateway_token == "a-token-of-some-length"
    monkeypatch.setenv("RUNTIMED_GATEWAY_URL", "")
    assert Settings().gateway_url is None


def test_serve_refuses_a_gateway_url_that_is_not_http(tmp_path: Path) -> None:
    socket_dir = tmp_path / "sock"
    socket_dir.mkdir(mode=0o700)
    cli = [sys.executable, "-m", "runtimed.cli", "--socket", str(socket_dir / "s.sock")]
    done = subprocess.run(
        [*cli, "serve", "--data-dir", str(tmp_path / "data"), "--gateway-url", "ftp://host/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "gateway URL 'ftp://host/' is not http(s)" in done.stderr
    assert not (socket_dir / "s.sock").exists()


async def test_the_daemons_kernelspecs_are_the_gateways(
    settings: Settings, enterprise_gateway: EnterpriseGateway
) -> None:
    """A front end of the daemon's Kernel Gateway API can only launch what the upstream
    gateway has: `/api/kernelspecs` lists the upstream's."""
    remote = gateway_settings(settings, enterprise_gateway.url, enterprise_gateway.token)
    web = WebDaemon(dataclasses.replace(remote, ws=("127.0.0.1", 0)))
    await web.start()
    try:

        def get(path: str) -> dict:
            request = urllib.request.Request(
                f"http://127.0.0.1:{web.port}{path}",
                headers={"Authorization": f"token {web.token}"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # in a thread
                return json.loads(response.read())

        specs = await asyncio.to_thread(get, "/api/kernelspecs")
        assert specs == enterprise_gateway.get("/api/kernelspecs")
        assert "unbounded" in specs["kernelspecs"]  # a kernelspec only the gateway has
        one = await asyncio.to_thread(get, "/api/kernelspecs/unbounded")
        assert one["name"] == "unbounded"
    finally:
        await web.stop()


def test_a_gateway_target_maps_its_urls_and_refuses_what_is_not_http() -> None:
    target = GatewayTarget("https://gw.example.org:8443/base/", token="t0ken-of-length")
    assert target.http_url("/api/kernels") == "https://gw.example.org:8443/base/api/kernels"
    assert target.ws_url("/api/kernels/k/channels?session_id=s") == (
        "wss://gw.example.org:8443/base/api/kernels/k/channels?session_id=s"
    )
    assert target.headers == {"Authorization": "token t0ken-of-length"}
    assert GatewayTarget("http://127.0.0.1:1").ws_url("/x") == "ws://127.0.0.1:1/x"
    assert GatewayTarget("http://127.0.0.1:1").headers == {}
    for bad in ("ftp://host", "host:8888", "http://"):
        with pytest.raises(KernelError) as refused:
            GatewayTarget(bad)
        assert refused.value.code == "bad_request"
