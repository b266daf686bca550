"""Hostile bytes on the daemon's socket, fuzzed (hypothesis) and written by hand.

Every connection here speaks to one daemon process over blocking sockets. Whatever a
connection sends, it gets well-formed frames back (responses, or one error frame and
a close); the daemon stays up; and a bystander's notebook, checked at the end, is
exactly what it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import struct
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtimed.wire import MAX_FRAME_SIZE
from runtimed.wire.messages import CONTROL_ACTIONS, NOTEBOOK_ACTIONS
from tests.conftest import quick_settings, short_socket_dir
from tests.daemon.test_wire import PREAMBLE, frame, typed
from tests.reliability.conftest import DaemonProcess, quick_timings

NOTEBOOK = "nb-fuzz"
BYSTANDER = "nb-bystander"
SPEC_CODES = {
    "bad_preamble",
    "unsupported_version",
    "frame_too_large",
    "bad_frame",
    "bad_handshake",
    "bad_request",
    "unknown_action",
    "bad_sync",
    "bad_path",
    "no_kernel",
    "no_such_cell",
    "no_such_comm",
    "blob_not_found",
}
# Requests that would start, attach or write something real if random input made them
# valid, or move this raw peer to a new epoch it does not implement (compact): they get
# only wrong types below, never random strings.
RISKY = {"launch_kernel", "attach_kernel", "save", "shutdown_daemon", "compact"}
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Wire:
    """One blocking connection, spoken byte for byte."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.daemon = daemon
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(daemon.settings.socket_path))

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def join(self, notebook_id: str = NOTEBOOK) -> None:
        hello = {"channel": "notebook", "notebook_id": notebook_id, "snapshot": False}
        self.sock.sendall(PREAMBLE + frame(json.dumps(hello).encode()))
        assert json.loads(self.read_frame())["ok"] is True

    def send(self, data: bytes) -> None:
        # The daemon may already have closed on an earlier error frame.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def read_frame(self) -> bytes:
        header = self._read_exactly(4)
        (length,) = struct.unpack(">I", header)
        return self._read_exactly(length)

    def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError(f"end of stream after {len(data)} of {n} bytes")
            data += chunk
        return data

    def request(self, body: dict | bytes) -> dict:
        """Send one REQUEST frame and return its RESPONSE (skipping broadcasts and syncs)."""
        self.send(typed(0x01, body))
        while (reply := self.read_frame())[0] != 0x02:
            assert reply[0] in (0x00, 0x03), reply[:20]
        return json.loads(reply[1:])

    def frames_until_close(self) -> list[bytes]:
        """Say we are done, then read every frame until the daemon closes (whole frames only)."""
        self.sock.shutdown(socket.SHUT_WR)
        frames = []
        while True:
            try:
                frames.append(self.read_frame())
            except (EOFError, ConnectionResetError):
                return frames


def error_code(body: bytes, *, typed_frame: bool) -> str | None:
    """The code of an error frame, or None for any other frame."""
    if not typed_frame:
        reply = json.loads(body)
        return None if reply.get("ok") else reply["error"]["code"]
    if body[0] != 0x03:
        return None
    message = json.loads(body[1:])
    return message["code"] if message["event"] == "error" else None


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon process for every test and example of this module (each only attacks
    and checks), and a bystander room written before them."""
    root = tmp_path_factory.mktemp("hostile")
    sock_dir = short_socket_dir()
    config = quick_settings(root / "data", sock_dir)
    process = DaemonProcess(config, root / "daemon.log", quick_timings(config))
    try:
        asyncio.run(process.start())
        asyncio.run(_write_bystander(process))
        yield process
    finally:
        process.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
def daemon(shared_daemon: DaemonProcess) -> Iterator[DaemonProcess]:
    """The module's daemon; after each test it is still up and the bystander intact."""
    yield shared_daemon
    assert shared_daemon.alive, "the daemon died"
    assert asyncio.run(_read_bystander(shared_daemon)) == ["written before the fuzz"]


async def _write_bystander(daemon: DaemonProcess) -> None:
    async with daemon.client(BYSTANDER) as client:
        client.doc.add_cell(source="written before the fuzz")
        await client.wait_synced()


async def _read_bystander(daemon: DaemonProcess) -> list[str]:
    async with daemon.client(BYSTANDER) as client:
        return [cell.source for cell in client.doc.get_cells()]


def assert_well_formed(frames: list[bytes], *, typed_frames: bool = True) -> None:
    codes = [error_code(f, typed_frame=typed_frames) for f in frames]
    errors = [c for c in codes if c is not None]
    assert set(errors) <= SPEC_CODES, errors
    assert len([c for c in codes if c is not None and c not in _REQUEST_CODES]) <= 1


_REQUEST_CODES = {"bad_request", "unknown_action", "no_kernel", "no_such_cell", "no_such_comm"}


# ------------------------------------------------------------------------ fuzzing


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_instead_of_a_preamble(daemon: DaemonProcess, data: bytes) -> None:
    with Wire(daemon) as wire:
        wire.send(data)
        frames = wire.frames_until_close()
    assert_well_formed(frames, typed_frames=False)


@FUZZ
@given(chunks=st.lists(st.binary(max_size=400), max_size=6))
def test_random_frames_after_a_join(daemon: DaemonProcess, chunks: list[bytes]) -> None:
    with Wire(daemon) as wire:
        wire.join()
        for chunk in chunks:
            wire.send(frame(chunk))
        frames = wire.frames_until_close()
    assert_well_formed(frames)


@FUZZ
@given(chunks=st.lists(st.binary(min_size=1, max_size=400), max_size=4))
def test_random_sync_messages(daemon: DaemonProcess, chunks: list[bytes]) -> None:
    with Wire(daemon) as wire:
        wire.join()
        for chunk in chunks:
            wire.send(typed(0x00, chunk))
        frames = wire.frames_until_close()
    assert_well_formed(frames)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
SAFE_ACTIONS = [*sorted(set(NOTEBOOK_ACTIONS) - RISKY), "no_such_action", "", "PING"]


@FUZZ
@given(
    action=st.sampled_from(SAFE_ACTIONS),
    params=st.dictionaries(
        st.sampled_from(["cell_id", "code", "comm_id", "data", "buffers", "hash", "x"]), JSON
    ),
    request_id=st.integers() | st.text(max_size=10),
)
def test_random_requests_get_a_response_and_the_connection_stays(
    daemon: DaemonProcess, action: str, params: dict, request_id: int | str
) -> None:
    with Wire(daemon) as wire:
        wire.join()
        response = wire.request({"id": request_id, "action": action, **params})
        assert response["id"] == request_id
        assert response["ok"] or response["error"]["code"] in SPEC_CODES, response
        assert wire.request({"id": "next", "action": "get_comms"})["ok"] is True


# ------------------------------------------------------------ written by hand


def _wrong_values(annotation: Any) -> list[Any]:
    """JSON values no field of this type accepts."""
    samples: list[Any] = [0, 1.5, True, "text", [1], {"k": 1}]
    candidates = [v for v in samples if not _accepts(annotation, v)]
    return candidates


def _accepts(annotation: Any, value: Any) -> bool:
    try:
        msgspec.convert({"v": value}, msgspec.defstruct("Probe", [("v", annotation)]))
    except msgspec.ValidationError:
        return False
    return True


WRONG_TYPES = [
    (action, field.name, value)
    for actions in (NOTEBOOK_ACTIONS, CONTROL_ACTIONS)
    for action, params in actions.items()
    for field in msgspec.structs.fields(params)
    for value in _wrong_values(field.type)
]


def test_a_wrong_type_for_every_request_field_is_a_bad_request_naming_it(
    daemon: DaemonProcess,
) -> None:
    assert len(WRONG_TYPES) > 40
    with Wire(daemon) as wire:
        wire.join()
        for action, field, value in WRONG_TYPES:
            if action in CONTROL_ACTIONS:
                continue
            response = wire.request({"id": 1, "action": action, field: value})
            assert response["ok"] is False, (action, field, value)
            assert response["error"]["code"] == "bad_request"
            assert field in response["error"]["message"], response
    with Wire(daemon) as control:
        control.sock.sendall(PREAMBLE + frame(b'{"channel": "control"}'))
        assert json.loads(control.read_frame())["ok"] is True
        for action in CONTROL_ACTIONS:
            response = control.request({"id": 2, "action": action, "unexpected": 1})
            assert response["error"]["code"] == "bad_request"


def nested(depth: int) -> bytes:
    return b'{"id": 1, "action": "execute", "code": ' + b"[" * depth + b"]" * depth + b"}"


HAND_WRITTEN = {
    "wrong magic": (b"\x00\x00\x00\x05hello", "bad_preamble", False),
    "an HTTP request": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_preamble", False),
    "a newer protocol": (b"\xc0\xde\x01\xac\x07", "unsupported_version", False),
    "a hello over the cap": (
        PREAMBLE + struct.pack(">I", MAX_FRAME_SIZE + 1),
        "frame_too_large",
        False,
    ),
    "a hello that is not JSON": (PREAMBLE + frame(b"\xff\xfe{"), "bad_handshake", False),
    "a hello of invalid UTF-8": (
        PREAMBLE + frame(b'{"channel": "\xc3\x28"}'),
        "bad_handshake",
        False,
    ),
}
AFTER_JOIN = {
    "a length over the cap": (struct.pack(">I", MAX_FRAME_SIZE + 1), "frame_too_large"),
    "a length of 4 GiB": (b"\xff\xff\xff\xff", "frame_too_large"),
    "an empty frame": (frame(b""), "bad_frame"),
    "an unknown type byte": (frame(b"\x09{}"), "bad_frame"),
    "a snapshot from a client": (frame(b"\x05" + b"x" * 10), "bad_frame"),
    "JSON nested 100,000 deep": (typed(0x01, nested(100_000)), "bad_frame"),
    "invalid UTF-8 in a request": (
        typed(0x01, b'{"id": 1, "action": "get_comms", "x": "\xff"}'),
        "bad_frame",
    ),
    "a request id that is a float": (typed(0x01, {"id": 1.5, "action": "get_comms"}), "bad_frame"),
    "a request that is a list": (typed(0x01, b"[1, 2]"), "bad_frame"),
    "a presence frame that is not JSON": (frame(b"\x04not json"), "bad_frame"),
}


@pytest.mark.parametrize("case", list(HAND_WRITTEN))
def test_hand_written_bad_openings(daemon: DaemonProcess, case: str) -> None:
    data, code, _ = HAND_WRITTEN[case]
    with Wire(daemon) as wire:
        wire.send(data)
        frames = wire.frames_until_close()
    assert [error_code(f, typed_frame=False) for f in frames] == [code]


@pytest.mark.parametrize("case", list(AFTER_JOIN))
def test_hand_written_bad_frames_after_a_join(daemon: DaemonProcess, case: str) -> None:
    data, code = AFTER_JOIN[case]
    with Wire(daemon) as wire:
        wire.join()
        wire.send(data)
        frames = wire.frames_until_close()
    codes = [error_code(f, typed_frame=True) for f in frames]
    assert [c for c in codes if c is not None] == [code]


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ({"id": 1, "action": "unknown"}, "unknown_action"),
        ({"id": 1, "action": "ping"}, "unknown_action"),  # a control action, on a notebook
        ({"id": 1, "action": "execute", "code": "x" * (MAX_FRAME_SIZE - 100)}, "no_kernel"),
        ({"id": 1, "action": "get_blob", "hash": "x" * 1_000_000}, "bad_request"),
        ({"id": "a" * 100_000, "action": "get_comms"}, None),
        ({"id": 1, "action": "execute_cell", "cell_id": "\udcff"}, "bad_frame"),
    ],
)
def test_hand_written_bad_requests(daemon: DaemonProcess, request_body: dict, code: str) -> None:
    body = json.dumps(request_body).encode()
    with Wire(daemon) as wire:
        wire.join()
        if code == "bad_frame":  # a lone surrogate escaped in JSON: not valid Unicode
            wire.send(typed(0x01, body))
            frames = wire.frames_until_close()
            assert [c for f in frames if (c := error_code(f, typed_frame=True))] == [code]
            return
        response = wire.request(body)
        assert response["id"] == request_body["id"]
        if code is None:
            assert response["ok"] is True
        else:
            assert response["error"]["code"] == code, response
        assert wire.request({"id": 2, "action": "get_comms"})["ok"] is True
