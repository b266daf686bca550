"""Who may reach the daemon, and where a client's names may lead.

- The Unix socket refuses another local user: tried as uid 65534 (`nobody`) from a
  child process that drops root's privileges before it connects.
- Notebook ids, notebook paths and blob hashes from clients never name a file
  outside the daemon's directories (or a non-notebook file).
- The TCP (WebSocket) listener demands its token: tests/web/test_listener.py refuses
  no token, a wrong one and a wrong Bearer header; here, near misses of the real one.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from notebook_doc import doc_filename
from runtimed.client import ClientError
from tests.conftest import RunningDaemon
from tests.web.conftest import WebDaemon, web, web_settings  # noqa: F401 (fixtures)

NOBODY = 65534

CONNECT_AS_NOBODY = """
import os, socket, sys
os.setgroups([])
os.setgid({uid})
os.setuid({uid})
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(exc.errno)
else:
    print("connected")
"""


def connect_as(uid: int, path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CONNECT_AS_NOBODY.format(uid=uid), str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


async def test_another_local_user_cannot_connect(running: RunningDaemon, tmp_path: Path) -> None:
    path = running.settings.socket_path
    assert connect_as(NOBODY, path) == str(errno.EACCES)
    # Not the directory alone: a socket made reachable by its directory still refuses.
    path.parent.chmod(0o711)
    try:
        assert connect_as(NOBODY, path) == str(errno.EACCES)
    finally:
        path.parent.chmod(0o700)
    async with running.client("nb-owner") as owner:  # while its owner gets in
        assert owner.joined


@pytest.mark.parametrize(
    "notebook_id",
    ["../../../../etc/passwd", "/etc/passwd", "..", "a/../../b", "x" * 5000, "\x00\n\t"],
)
async def test_notebook_ids_never_become_paths(running: RunningDaemon, notebook_id: str) -> None:
    docs = running.settings.docs_dir
    async with running.client(notebook_id) as client:
        client.doc.add_cell(source="mine")
        await client.wait_synced()
    await running.stop()  # saves every room
    # The one file the room wrote is the hash-named doc, inside the docs directory (the
    # trust store beside it is the daemon's, whatever the rooms are called).
    trust = running.settings.trust_dir
    written = [p for p in docs.parent.rglob("*") if p.is_file() and trust not in p.parents]
    assert written == [docs / doc_filename(notebook_id)]
    await running.start()


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("../../etc/passwd.ipynb", "must be absolute"),
        ("/etc/passwd", "does not end in .ipynb"),
        ("/etc/shadow", "does not end in .ipynb"),
        ("/", "does not end in .ipynb"),
        ("relative.ipynb", "must be absolute"),
    ],
)
async def test_notebook_paths_outside_notebooks_are_refused(
    running: RunningDaemon, path: str, complaint: str
) -> None:
    with pytest.raises(ClientError) as refused:
        async with running.client("nb-path", path=path):
            pass
    assert refused.value.code == "bad_path"
    assert complaint in refused.value.message


async def test_a_directory_named_like_a_notebook_is_refused(
    running: RunningDaemon, tmp_path: Path
) -> None:
    fake = tmp_path / "dir.ipynb"
    fake.mkdir()
    with pytest.raises(ClientError) as refused:
        async with running.client(str(fake), path=str(fake)):
            pass
    assert refused.value.code == "bad_path"


@pytest.mark.parametrize(
    "blob_hash",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "..",
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "a" * 62 + "/.",
        "a" * 63 + "\n",
        "a" * 63 + "\x00",
        "../" + "a" * 61,
    ],
)
async def test_blob_hashes_never_become_paths(running: RunningDaemon, blob_hash: str) -> None:
    async with running.client("nb-blobs") as client:
        with pytest.raises(ClientError) as refused:
            await client.request("get_blob", hash=blob_hash)
        assert refused.value.code == "bad_request"
        assert "hash" in refused.value.message
        assert (await client.request("get_comms")) == {"comms": []}  # the connection goes on


async def test_near_misses_of_the_token_are_refused(web: WebDaemon) -> None:  # noqa: F811
    token = web.token
    near = (token[:-1], token + "x", token.upper(), token[1:] + token[0], "%20" + token, "%00")
    for guess in near:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{web.ws_url}?token={guess}")
        assert refused.value.response.status_code == 401
    async with connect(f"{web.ws_url}?token={token}"):
        pass
