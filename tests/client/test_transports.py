"""The client's transport seam: the same Client over the Unix socket and the WebSocket."""

from __future__ import annotations

import pytest

from runtimed.client import Client, ClientError, UnixSocketTransport, WebSocketTransport
from tests.web.conftest import WebDaemon


async def test_a_websocket_client_and_a_socket_client_edit_one_doc(web: WebDaemon) -> None:
    over_ws = Client("shared", transport=WebSocketTransport(web.ws_url, web.token))
    over_socket = Client("shared", socket_path=web.settings.socket_path)
    async with over_ws, over_socket:
        cell = over_ws.doc.add_cell(source="typed in a browser-like client")
        await over_ws.wait_synced()
        await over_socket.wait_for(
            lambda c: cell in c.doc.cell_ids(), 10, "the WebSocket client's cell"
        )
        snapshot = over_socket.doc.get_cell(cell)
        assert snapshot is not None
        assert snapshot.source == "typed in a browser-like client"


async def test_a_wrong_token_is_no_daemon_with_the_address(web: WebDaemon) -> None:
    client = Client("nb", transport=WebSocketTransport(web.ws_url, "not-the-token"))
    with pytest.raises(ClientError) as caught:
        await client.connect()
    assert caught.value.code == "no_daemon"
    assert web.ws_url in caught.value.message


def test_a_socket_path_and_a_transport_are_not_both_taken() -> None:
    with pytest.raises(ValueError, match="not both"):
        Client("nb", socket_path="/tmp/x.sock", transport=UnixSocketTransport("/tmp/y.sock"))
