"""Notebook trust: nbformat's notary in the data dir, per-cell trust in rooms, `runtimed trust`.

Real daemons on real sockets, real .ipynb files, real kernels; only the notary's own
rules are checked without a daemon.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbformat.sign import NotebookNotary
from nbformat.v4 import new_code_cell, new_notebook, new_output

from runtimed import signatures
from runtimed.blob_store import BlobStore
from runtimed.client import Client
from runtimed.config import Settings
from runtimed.trust import DB_NAME, SECRET_NAME, Notary, output_is_inert
from tests.conftest import RunningDaemon
from tests.daemon import test_cli

served = test_cli.served  # a `runtimed serve` subprocess

HOSTILE_HTML = '<img src=x onerror="window.pwned = 1"><script>window.pwned = 2</script>'


def hostile_notebook(path: Path, *, widgets: bool = False) -> Path:
    """A downloaded notebook: rich outputs that would run script, a harmless print, and
    optionally saved widget state (an HTML widget whose value carries script)."""
    nb = new_notebook(
        cells=[
            new_code_cell(
                "show()",
                id="rich",
                outputs=[new_output("display_data", data={"text/html": HOSTILE_HTML})],
            ),
            new_code_cell(
                "js()",
                id="js",
                outputs=[
                    new_output(
                        "execute_result",
                        data={"application/javascript": "window.pwned = 3", "text/plain": "js"},
                        execution_count=1,
                    )
                ],
            ),
            new_code_cell(
                "print('hi')",
                id="plain",
                outputs=[new_output("stream", name="stdout", text="hi\n")],
            ),
        ]
    )
    if widgets:
        nb.metadata["widgets"] = html_widget_state("w1", HOSTILE_HTML)
    nbformat.write(nb, path)
    return path


def html_widget_state(model_id: str, value: str) -> dict[str, Any]:
    """An .ipynb's saved widget state (`metadata.widgets`): one HTML widget."""
    return {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {
                model_id: {
                    "model_module": "@jupyter-widgets/controls",
                    "model_module_version": "2.0.0",
                    "model_name": "HTMLModel",
                    "state": {"value": value},
                }
            },
        }
    }


def trust_of(client: Client) -> dict[str, Any]:
    """The last `trust` broadcast this client saw."""
    events = [e.fields for e in client.broadcasts if e.event == "trust"]
    assert events, "no trust broadcast"
    return events[-1]


# --- the notary --------------------------------------------------------------------------


def test_notary_keeps_a_private_secret_and_store_and_signs_notebooks(tmp_path: Path) -> None:
    directory = tmp_path / "trust"
    nb = nbformat.v4.new_notebook(cells=[new_code_cell("1", outputs=[])])
    notary = Notary(directory)
    assert not notary.notebook_signed(nb)
    notary.sign_notebook(nb)
    assert notary.notebook_signed(nb)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in (SECRET_NAME, DB_NAME):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    secret = (directory / SECRET_NAME).read_bytes()

    again = Notary(directory)  # a restart reads the same secret and store
    assert (directory / SECRET_NAME).read_bytes() == secret
    assert again.notebook_signed(nb)
    nb.cells[0].source = "2"  # any change breaks the signature
    assert not again.notebook_signed(nb)

    contents = [{"metadata": {}, "n": n} for n in range(1200)]  # looked up in chunks
    again.sign(contents[:700])
    assert again.signed(contents) == [n < 700 for n in range(1200)]

    other = Notary(tmp_path / "elsewhere")  # another user's secret vouches for nothing here
    other.sign_notebook(nb)
    assert other.notebook_signed(nb)
    assert not again.notebook_signed(nb)
    assert not again.notebook_signed({"cells": "not a notebook"})


def nbformat_notary(directory: Path) -> NotebookNotary:
    """nbformat's own notary on the same secret and store as `Notary(directory)`."""
    return NotebookNotary(
        data_dir=str(directory),
        secret=(directory / SECRET_NAME).read_bytes(),
        db_file=str(directory / DB_NAME),
        algorithm="sha256",
    )


def test_signatures_and_store_agree_with_nbformats_notary(tmp_path: Path) -> None:
    """runtimed signs without importing nbformat; a store either one wrote reads in the
    other, so a store kept from before (or `jupyter trust` on it) still vouches."""
    directory = tmp_path / "trust"
    notary = Notary(directory)
    theirs = nbformat_notary(directory)
    nb = new_notebook(
        cells=[
            new_code_cell(
                "print('é')",
                id="c1",
                outputs=[new_output("display_data", data={"text/html": "<b>x</b>"})],
                metadata={"n": 1.5, "flag": True, "none": None, "list": [1, "two", [3]]},
            )
        ],
        metadata={"signature": "sha256:stale", "language_info": {"name": "python"}},
    )
    contents = [{"metadata": {}, "runtimed": "cell-outputs", "outputs": ["x", "y"]}]
    with theirs:
        assert signatures.compute_signature(notary._secret, nb) == theirs.compute_signature(nb)
        assert signatures.compute_signature(
            notary._secret, contents[0]
        ) == theirs.compute_signature(contents[0])
        theirs.sign(nb)
    assert nb.metadata.signature == "sha256:stale"  # the caller's notebook is left as it was
    assert notary.notebook_signed(nb)
    notary.sign(contents)
    other = new_notebook(cells=[new_code_cell("2")])
    notary.sign_notebook(other)
    with nbformat_notary(directory) as theirs:
        assert theirs.check_signature(other)
        assert theirs.store.check_signature(
            signatures.compute_signature(notary._secret, contents[0]), "sha256"
        )


def test_an_unreadable_store_is_set_aside_and_trusts_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "trust"
    nb = new_notebook(cells=[new_code_cell("1")])
    Notary(directory).sign_notebook(nb)
    (directory / DB_NAME).write_bytes(b"not a database" * 100)
    notary = Notary(directory)
    assert not notary.notebook_signed(nb)
    assert (directory / f"{DB_NAME}.bak").read_bytes().startswith(b"not a database")
    assert stat.S_IMODE((directory / DB_NAME).stat().st_mode) == 0o600
    notary.sign_notebook(nb)
    assert notary.notebook_signed(nb)


def test_only_rich_outputs_with_data_can_run_code(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    stream = json.dumps({"output_type": "stream", "name": "stdout", "text": "x"})
    html = json.dumps({"output_type": "display_data", "data": {"text/html": "<b>"}, "metadata": {}})
    empty = json.dumps({"output_type": "display_data", "metadata": {}})
    manifest = blobs.put(html.encode(), "application/x-nbformat-output+json")
    assert output_is_inert(stream, blobs)
    assert output_is_inert(empty, blobs)
    assert not output_is_inert(html, blobs)
    assert not output_is_inert(manifest, blobs)
    assert not output_is_inert("0" * 64, blobs)  # unreadable: assume the worst
    assert not output_is_inert("{broken", blobs)


# --- rooms ---------------------------------------------------------------------------------


async def test_a_file_notebook_is_untrusted_until_trusted_and_stays_so_across_restart(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = str(hostile_notebook(tmp_path / "hostile.ipynb", widgets=True))
    async with running.client(path, path=path) as a, running.client(path, path=path) as b:
        expected = {"trusted": False, "untrusted_cells": ["rich", "js"], "comms_trusted": False}
        assert trust_of(a) == expected  # announced on join, before kernel_status
        assert await a.request("trust_info") == expected
        saved = await a.request("save")
        assert saved["signed"] is False  # an untrusted notebook is saved unsigned

        state = await a.request("trust")
        trusted = {"trusted": True, "untrusted_cells": [], "comms_trusted": True}
        assert state == trusted
        await b.wait_for(lambda c: trust_of(c) == trusted, what="trust broadcast")

    await running.stop()  # the stored copy is read back; signatures vouch for it
    await running.start()
    async with running.client(path, path=path) as again:
        assert trust_of(again)["trusted"] is True


async def test_a_restart_does_not_trust_what_was_untrusted(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = str(hostile_notebook(tmp_path / "hostile.ipynb"))
    async with running.client(path, path=path) as client:
        assert trust_of(client)["untrusted_cells"] == ["rich", "js"]
    await running.stop()
    await running.start()
    async with running.client(path, path=path) as client:
        assert trust_of(client)["untrusted_cells"] == ["rich", "js"]


async def test_a_trusted_save_is_signed_and_the_file_alone_is_trusted_later(
    running: RunningDaemon, settings: Settings, tmp_path: Path
) -> None:
    path = str(hostile_notebook(tmp_path / "hostile.ipynb"))
    async with running.client(path, path=path) as client:
        await client.request("trust")
        assert (await client.request("save"))["signed"] is True
    await running.stop()
    for stored in settings.docs_dir.glob("*.automerge"):  # only the file is left
        stored.unlink()
    await running.start()
    async with running.client(path, path=path) as client:
        assert trust_of(client)["trusted"] is True

    # The file edited elsewhere: its signature no longer matches.
    await running.stop()
    for stored in settings.docs_dir.glob("*.automerge"):
        stored.unlink()
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs[0].data["text/html"] = "<b>changed</b>"
    nbformat.write(nb, path)
    await running.start()
    async with running.client(path, path=path) as client:
        assert trust_of(client)["untrusted_cells"] == ["rich"]


async def test_a_notebook_signed_in_the_store_opens_trusted(
    running: RunningDaemon, settings: Settings, tmp_path: Path
) -> None:
    signed = str(hostile_notebook(tmp_path / "signed.ipynb", widgets=True))
    notary = Notary(settings.trust_dir)  # what a save, or `jupyter trust`, leaves
    notary.sign_notebook(nbformat.read(signed, as_version=4))
    async with running.client(signed, path=signed) as client:
        assert trust_of(client) == {"trusted": True, "untrusted_cells": [], "comms_trusted": True}


async def test_outputs_a_kernel_produces_are_trusted_and_stay_trusted_after_restart(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = str(hostile_notebook(tmp_path / "hostile.ipynb", widgets=True))
    async with running.client(path, path=path) as client:
        client.doc.set_source("rich", "from IPython.display import HTML\nHTML('<b>mine</b>')")
        await client.wait_synced()
        await client.request("launch_kernel")
        # The saved widgets are dropped when a kernel starts: every comm now is its own.
        await client.wait_for(lambda c: trust_of(c)["comms_trusted"], what="comms trusted")
        await client.request("execute_cell", cell_id="rich")
        await client.wait_for(
            lambda c: trust_of(c)["untrusted_cells"] == ["js"] and c.doc.get_outputs("rich"),
            timeout=60,
            what="the executed cell trusted",
        )
        assert "mine" in client.doc.get_outputs("rich")[0]
        await client.request("shutdown_kernel")
    await running.stop()
    await running.start()
    async with running.client(path, path=path) as client:
        assert trust_of(client) == {
            "trusted": False,
            "untrusted_cells": ["js"],
            "comms_trusted": True,
        }


async def test_outputs_a_peer_writes_are_not_trusted(running: RunningDaemon) -> None:
    async with running.client("untitled") as client:
        assert trust_of(client)["trusted"] is True  # nothing in it
        cell = client.doc.add_cell(source="x")
        html = {"output_type": "display_data", "data": {"text/html": "<i>"}, "metadata": {}}
        client.doc.set_outputs(cell, [json.dumps(html)])
        await client.wait_synced()
        await client.wait_for(
            lambda c: trust_of(c)["untrusted_cells"] == [cell], what="peer output untrusted"
        )


def test_runtimed_trust_command_trusts_an_open_room(
    settings: Settings, served: subprocess.Popen[str], tmp_path: Path
) -> None:
    path = str(hostile_notebook(tmp_path / "hostile.ipynb"))
    base = [sys.executable, "-m", "runtimed.cli", "--socket", str(settings.socket_path)]
    watcher = subprocess.Popen([*base, "watch", path], stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        first = _next_trust_line(watcher)
        assert json.loads(first)["trusted"] is False
        done = subprocess.run(
            [*base, "trust", path], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == f"trusted {path}"
        assert json.loads(_next_trust_line(watcher))["trusted"] is True  # peers are told
    finally:
        watcher.terminate()
        watcher.wait(30)
        assert watcher.stdout is not None
        watcher.stdout.close()

    refused = subprocess.run(
        [*base, "trust", str(tmp_path / "missing.ipynb")], capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "is not an .ipynb file" in refused.stderr


def _next_trust_line(proc: subprocess.Popen[str]) -> str:
    """The fields of the next `trust:` line `runtimed watch` prints (its stdout is read
    line by line; the process is killed by the caller if the test fails)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("trust: "):
            return line.removeprefix("trust: ")
    raise AssertionError("runtimed watch ended without a trust line")
