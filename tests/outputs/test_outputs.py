"""IOPub messages to nbformat outputs, the OutputLog, and manifests in a real BlobStore."""

from __future__ import annotations

import datetime
import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager

from runtimed.blob_store import HASH_RE, BlobError, BlobStore, canonical_json
from runtimed.outputs import (
    INLINE_LIMIT,
    MANIFEST_MEDIA_TYPE,
    STREAM_CHUNK_CHARS,
    DisplayUpdate,
    OutputError,
    OutputLog,
    decode_output,
    display_id_from_iopub,
    display_update_from_iopub,
    encode_output,
    output_from_iopub,
)

_counter = itertools.count()


def iopub(msg_type: str, content: dict[str, Any], parent_id: str = "execute-1") -> dict[str, Any]:
    """A message shaped the way jupyter_client's session.deserialize delivers it."""
    msg_id = f"{uuid.uuid4().hex}_{next(_counter)}"
    header = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "username": "user",
        "session": "kernel-session",
        "date": datetime.datetime.now(datetime.UTC),
        "version": "5.3",
    }
    return {
        "header": header,
        "msg_id": msg_id,
        "msg_type": msg_type,
        "parent_header": {"msg_id": parent_id, "msg_type": "execute_request"},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return iopub("stream", {"name": name, "text": text})


def display(html: str, display_id: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "data": {"text/html": html, "text/plain": "<HTML>"},
        "metadata": {},
        "transient": {"display_id": display_id} if display_id else {},
    }
    return iopub("display_data", content)


def update(html: str, display_id: str) -> dict[str, Any]:
    content = {
        "data": {"text/html": html, "text/plain": "<HTML>"},
        "metadata": {"isolated": True},
        "transient": {"display_id": display_id},
    }
    return iopub("update_display_data", content)


def assert_valid_nbformat(*outputs: dict[str, Any]) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=list(outputs))])
    nbformat.validate(nbformat.from_dict(json.loads(json.dumps(notebook))))


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def decoded(log: OutputLog, blobs: BlobStore) -> list[dict[str, Any]]:
    return [decode_output(entry, blobs) for entry in log.entries()]


# -- output_from_iopub -------------------------------------------------------------------

KINDS = [
    (
        stream("hello\n"),
        {"output_type": "stream", "name": "stdout", "text": "hello\n"},
    ),
    (
        display("<b>x</b>", display_id="d1"),
        {
            "output_type": "display_data",
            "data": {"text/html": "<b>x</b>", "text/plain": "<HTML>"},
            "metadata": {},
        },
    ),
    (
        iopub(
            "execute_result",
            {
                "execution_count": 3,
                "data": {"text/plain": "42", "application/json": {"answer": [42]}},
                "metadata": {"application/json": {"expanded": False}},
            },
        ),
        {
            "output_type": "execute_result",
            "execution_count": 3,
            "data": {"text/plain": "42", "application/json": {"answer": [42]}},
            "metadata": {"application/json": {"expanded": False}},
        },
    ),
    (
        iopub(
            "error",
            {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": ["a", "b"]},
        ),
        {
            "output_type": "error",
            "ename": "ZeroDivisionError",
            "evalue": "division by zero",
            "traceback": ["a", "b"],
        },
    ),
]


@pytest.mark.parametrize(("msg", "expected"), KINDS, ids=lambda kind: str(kind)[:30])
def test_each_output_kind_becomes_a_valid_nbformat_output(
    msg: dict[str, Any], expected: dict[str, Any]
) -> None:
    output = output_from_iopub(msg)
    assert output == expected
    assert_valid_nbformat(output)


def test_the_validator_rejects_a_leaked_transient() -> None:
    """The check above would catch a `transient` (or any extra key) left in an output."""
    leaked = {**KINDS[1][1], "transient": {"display_id": "d1"}}
    with pytest.raises(nbformat.ValidationError):
        assert_valid_nbformat(leaked)


def test_display_id_is_returned_separately() -> None:
    assert display_id_from_iopub(display("x", display_id="d1")) == "d1"
    assert display_id_from_iopub(display("x")) is None
    assert display_id_from_iopub(stream("x")) is None
    assert display_update_from_iopub(update("<i>2</i>", "d1")) == DisplayUpdate(
        "d1",
        {
            "output_type": "display_data",
            "data": {"text/html": "<i>2</i>", "text/plain": "<HTML>"},
            "metadata": {"isolated": True},
        },
    )
    assert display_update_from_iopub(display("x", display_id="d1")) is None


@pytest.mark.parametrize(
    "msg",
    [
        iopub("status", {"execution_state": "busy"}),
        iopub("execute_input", {"code": "1", "execution_count": 1}),
        iopub("comm_msg", {"comm_id": "c", "data": {}}),
        iopub("clear_output", {"wait": False}),
        update("x", "d1"),
    ],
    ids=lambda msg: msg["msg_type"],
)
def test_messages_that_add_no_output(msg: dict[str, Any]) -> None:
    assert output_from_iopub(msg) is None


def test_msg_type_is_read_from_the_header_too() -> None:
    msg = stream("x")
    del msg["msg_type"]
    assert output_from_iopub(msg) == {"output_type": "stream", "name": "stdout", "text": "x"}


@pytest.mark.parametrize(
    "msg",
    [
        "not a dict",
        {"content": {"name": "stdout", "text": "x"}},
        {"msg_type": "stream", "content": None},
        iopub("stream", {"name": "stdout", "text": 5}),
        iopub("stream", {"text": "x"}),
        iopub("error", {"ename": "E", "evalue": "v", "traceback": "not a list"}),
        iopub("display_data", {"data": ["not", "a", "dict"], "metadata": {}}),
        iopub("display_data", {"data": {"text/plain": 5}, "metadata": {}}),
        iopub("display_data", {"data": {}, "metadata": []}),
        iopub("display_data", {"data": {}, "metadata": {}, "transient": "d1"}),
        iopub("display_data", {"data": {}, "metadata": {}, "transient": {"display_id": 1}}),
        iopub("execute_result", {"data": {}, "metadata": {}, "execution_count": -1}),
        iopub("execute_result", {"data": {}, "metadata": {}, "execution_count": "1"}),
    ],
)
def test_malformed_output_messages_are_rejected(blobs: BlobStore, msg: Any) -> None:
    log = OutputLog(blobs)
    with pytest.raises(OutputError) as caught:
        log.apply(msg)
    assert caught.value.code == "bad_message"
    assert log.entries() == []


def test_update_without_a_display_id_is_rejected(blobs: BlobStore) -> None:
    msg = iopub("update_display_data", {"data": {"text/plain": "x"}, "metadata": {}})
    with pytest.raises(OutputError) as caught:
        OutputLog(blobs).apply(msg)
    assert caught.value.code == "bad_message"


# -- OutputLog: streams ------------------------------------------------------------------


def test_consecutive_output_of_one_stream_is_one_entry(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    assert log.apply(stream("a\n"))
    assert log.apply(stream("b"))
    assert log.apply(stream("c\n"))
    assert decoded(log, blobs) == [{"output_type": "stream", "name": "stdout", "text": "a\nbc\n"}]


def test_another_stream_or_output_starts_a_new_entry(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    for msg in [stream("out\n"), stream("err\n", "stderr"), stream("out again\n")]:
        log.apply(msg)
    log.apply(display("<p>"))
    log.apply(stream("after\n"))

    outputs = decoded(log, blobs)
    assert [(out["output_type"], out.get("name"), out.get("text")) for out in outputs] == [
        ("stream", "stdout", "out\n"),
        ("stream", "stderr", "err\n"),
        ("stream", "stdout", "out again\n"),
        ("display_data", None, None),
        ("stream", "stdout", "after\n"),
    ]
    assert_valid_nbformat(*outputs)


def test_ten_thousand_prints_are_one_exact_entry(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    lines = [f"line {n}: {'é' if n % 7 else '✓'}\n" for n in range(10_000)]
    for line in lines:
        log.apply(stream(line))

    (entry,) = log.entries()
    assert HASH_RE.fullmatch(entry)
    output = decode_output(entry, blobs)
    assert output == {"output_type": "stream", "name": "stdout", "text": "".join(lines)}
    assert_valid_nbformat(output)


def test_a_growing_stream_writes_only_new_chunks(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = OutputLog(blobs)
    line = "x" * 127 + "\n"
    per_chunk = STREAM_CHUNK_CHARS // len(line)
    assert per_chunk * len(line) == STREAM_CHUNK_CHARS
    for _ in range(3 * per_chunk):
        log.apply(stream(line))
    log.entries()
    written: list[int] = []
    put = blobs.put
    monkeypatch.setattr(blobs, "put", lambda data, *a: written.append(len(data)) or put(data, *a))

    for _ in range(2 * per_chunk):
        log.apply(stream(line))
    (entry,) = log.entries()

    manifest = blobs.get_json(entry)
    assert manifest["text"][5:] == [""]
    assert all(set(part) == {"$blob"} for part in manifest["text"][:5])
    assert len(written) == 2 + 1  # two new chunks and the manifest; old chunks untouched
    assert max(written) < 2 * STREAM_CHUNK_CHARS
    assert decode_output(entry, blobs)["text"] == line * (5 * per_chunk)


def test_entries_are_cached_until_they_change(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = OutputLog(blobs)
    for n in range(1000):
        log.apply(stream(f"{n}\n"))
    first = log.entries()
    puts: list[bytes] = []
    put = blobs.put
    monkeypatch.setattr(blobs, "put", lambda data, *a: puts.append(data) or put(data, *a))

    assert log.entries() == first
    log.apply(display("<b>small</b>"))
    assert log.entries()[0] == first[0]
    assert puts == []


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (["10%\r", "20%\r", "30%\n"], "30%\n"),
        (["abcdef\rXY\n"], "XYcdef\n"),
        (["50%\b\b\b60%\n"], "60%\n"),
        (["ab", "\b", "c\n"], "ac\n"),
        (["line\r", "\n", "next"], "line\nnext"),
        (["crlf\r\n"], "crlf\n"),
        (["keep\n\b"], "keep\n\b"),
        (["tab\tand ✓ unicode\n"], "tab\tand ✓ unicode\n"),
        (["done\n", "bar 1\r", "bar 2\r", "bar 3"], "done\nbar 3"),
    ],
)
def test_carriage_return_and_backspace_as_jupyterlab_shows_them(
    blobs: BlobStore, pieces: list[str], shown: str
) -> None:
    log = OutputLog(blobs)
    for piece in pieces:
        log.apply(stream(piece))
    assert decoded(log, blobs) == [{"output_type": "stream", "name": "stdout", "text": shown}]


def test_a_line_longer_than_a_chunk_is_settled_like_a_wrapped_terminal_line(
    blobs: BlobStore,
) -> None:
    log = OutputLog(blobs)
    log.apply(stream("z" * (STREAM_CHUNK_CHARS + 10)))
    log.apply(stream("\rAB"))
    (entry,) = log.entries()
    assert decode_output(entry, blobs)["text"] == "z" * (STREAM_CHUNK_CHARS + 10) + "AB"


def test_a_progress_bar_does_not_grow_the_output(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    for percent in range(10_000):
        log.apply(stream(f"\r{percent / 100:6.2f}%"))
    (entry,) = log.entries()
    assert json.loads(entry)["text"] == " 99.99%"


def test_a_log_resumes_the_stream_it_was_built_from(blobs: BlobStore) -> None:
    first = OutputLog(blobs)
    first.apply(stream("a\n"))
    resumed = OutputLog(blobs, first.entries())
    resumed.apply(stream("b\n"))
    assert decoded(resumed, blobs) == [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n"}
    ]


def test_a_log_built_from_an_unreadable_entry_keeps_it_and_appends(blobs: BlobStore) -> None:
    missing = "f" * 64
    log = OutputLog(blobs, [missing])
    assert log.apply(stream("new\n"))
    entries = log.entries()
    assert entries[0] == missing
    assert decode_output(entries[1], blobs)["text"] == "new\n"


def test_a_log_rejects_entries_that_are_not_strings(blobs: BlobStore) -> None:
    with pytest.raises(OutputError) as caught:
        OutputLog(blobs, [{"output_type": "stream"}])  # type: ignore[list-item]
    assert caught.value.code == "bad_output"


# -- OutputLog: clear_output and displays ------------------------------------------------


def test_clear_output_immediately(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    log.apply(stream("x\n"))
    log.apply(display("<p>", display_id="d1"))
    assert log.apply(iopub("clear_output", {"wait": False}))
    assert log.entries() == []
    assert log.display_ids() == set()
    assert not log.apply(iopub("clear_output", {"wait": False}))


def test_clear_output_wait_clears_on_the_next_output(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    log.apply(stream("old\n"))
    log.apply(display("<p>old</p>", display_id="d1"))
    before = log.entries()

    assert not log.apply(iopub("clear_output", {"wait": True}))
    assert log.entries() == before
    assert log.apply(update("<p>updated</p>", "d1"))  # an update is not an output: no clear
    assert len(log.entries()) == 2

    assert log.apply(stream("new\n"))
    assert decoded(log, blobs) == [{"output_type": "stream", "name": "stdout", "text": "new\n"}]
    log.apply(stream("more\n"))
    assert decoded(log, blobs)[0]["text"] == "new\nmore\n"  # cleared once only


def test_clear_cancels_a_pending_wait(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    log.apply(stream("a\n"))
    log.apply(iopub("clear_output", {"wait": True}))
    assert log.clear()
    log.apply(stream("b\n"))
    log.apply(iopub("clear_output", {"wait": True}))
    assert not OutputLog(blobs).clear()
    assert len(log.entries()) == 1


def test_update_display_data_updates_every_matching_output(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    log.apply(display("<p>one</p>", display_id="d1"))
    log.apply(display("<p>other</p>", display_id="d2"))
    result = {"execution_count": 4, "data": {"text/plain": "old"}, "metadata": {}}
    log.apply(iopub("execute_result", {**result, "transient": {"display_id": "d1"}}))
    assert log.display_ids() == {"d1", "d2"}

    assert log.apply(update("<p>two</p>", "d1"))
    assert not log.apply(update("<p>two</p>", "d1"))  # nothing left to change
    assert not log.apply(update("<p>x</p>", "unknown"))

    outputs = decoded(log, blobs)
    new_data = {"text/html": "<p>two</p>", "text/plain": "<HTML>"}
    assert outputs == [
        {"output_type": "display_data", "data": new_data, "metadata": {"isolated": True}},
        {
            "output_type": "display_data",
            "data": {"text/html": "<p>other</p>", "text/plain": "<HTML>"},
            "metadata": {},
        },
        {
            "output_type": "execute_result",
            "execution_count": 4,
            "data": new_data,
            "metadata": {"isolated": True},
        },
    ]
    assert_valid_nbformat(*outputs)


def test_update_display_from_another_target(blobs: BlobStore) -> None:
    """The room routes an update from any cell to every log that shows the display."""
    log = OutputLog(blobs)
    log.apply(display("<p>one</p>", display_id="shared"))
    change = display_update_from_iopub(update("<p>two</p>", "shared"))
    assert change is not None
    assert log.update_display(change.display_id, change.output)
    assert decoded(log, blobs)[0]["data"]["text/html"] == "<p>two</p>"
    with pytest.raises(OutputError):
        log.update_display("shared", {"data": "not a bundle"})


# -- entries: inline, manifests, missing blobs --------------------------------------------


def sized_output(size: int) -> dict[str, Any]:
    """A display_data whose canonical JSON is exactly `size` bytes."""
    empty = {"output_type": "display_data", "data": {"text/plain": ""}, "metadata": {}}
    padding = size - len(canonical_json(empty))
    return {**empty, "data": {"text/plain": "a" * padding}}


def test_an_output_at_the_limit_is_inline_and_one_byte_more_is_a_manifest(
    blobs: BlobStore,
) -> None:
    at_limit = encode_output(sized_output(INLINE_LIMIT), blobs)
    assert json.loads(at_limit) == sized_output(INLINE_LIMIT)
    assert list(blobs.iter_hashes()) == []

    above = encode_output(sized_output(INLINE_LIMIT + 1), blobs)
    assert HASH_RE.fullmatch(above)
    assert decode_output(above, blobs) == sized_output(INLINE_LIMIT + 1)


def test_the_limit_counts_utf8_bytes_not_characters(blobs: BlobStore) -> None:
    output = {"output_type": "display_data", "data": {"text/plain": "é" * 600}, "metadata": {}}
    assert len(json.dumps(output, ensure_ascii=False)) < INLINE_LIMIT < len(canonical_json(output))
    assert HASH_RE.fullmatch(encode_output(output, blobs))


def test_a_two_megabyte_display_is_a_manifest_read_back_byte_for_byte(blobs: BlobStore) -> None:
    html = "<table>" + "".join(f"<tr><td>{n}</td><td>ü</td></tr>" for n in range(70_000))
    assert len(html.encode()) > 2 * 1024 * 1024
    log = OutputLog(blobs)
    log.apply(display(html, display_id="big"))

    (entry,) = log.entries()
    assert HASH_RE.fullmatch(entry)
    assert blobs.info(entry).media_type == MANIFEST_MEDIA_TYPE
    output = decode_output(entry, blobs)
    assert output["data"]["text/html"].encode() == html.encode()
    assert canonical_json(output) == blobs.get(entry)


def test_output_widgets_store_manifests_only(blobs: BlobStore) -> None:
    log = OutputLog(blobs, inline_limit=None)
    log.apply(stream("tiny\n"))
    (entry,) = log.entries()
    assert HASH_RE.fullmatch(entry)
    assert decode_output(entry, blobs)["text"] == "tiny\n"


def test_a_lone_surrogate_survives_encoding(blobs: BlobStore) -> None:
    log = OutputLog(blobs)
    log.apply(stream("half \ud800 pair\n"))
    assert decoded(log, blobs)[0]["text"] == "half \ud800 pair\n"


def test_encode_output_rejects_what_is_not_an_output(blobs: BlobStore) -> None:
    for bad in [{"output_type": "nonsense"}, ["stream"], None]:
        with pytest.raises(OutputError) as caught:
            encode_output(bad, blobs)  # type: ignore[arg-type]
        assert caught.value.code == "bad_output"


def big_stream_entry(blobs: BlobStore) -> str:
    log = OutputLog(blobs)
    log.apply(stream("z" * (STREAM_CHUNK_CHARS + 10)))
    (entry,) = log.entries()
    return entry


@pytest.mark.parametrize("damage", ["missing manifest", "corrupt manifest", "missing chunk"])
def test_an_unreadable_manifest_raises_or_reads_as_a_placeholder(
    blobs: BlobStore, damage: str
) -> None:
    entry = big_stream_entry(blobs)
    manifest_path = blobs.path_for(entry)
    manifest = manifest_path.read_bytes()
    chunk_path = blobs.path_for(json.loads(manifest)["text"][0]["$blob"])
    assert decode_output(entry, blobs)["text"] == "z" * (STREAM_CHUNK_CHARS + 10)

    def break_it() -> str:
        if damage == "missing manifest":
            manifest_path.unlink(missing_ok=True)
            return "blob_not_found"
        if damage == "corrupt manifest":
            manifest_path.write_bytes(manifest.replace(b"stdout", b"stderr"))
            return "blob_corrupt"
        chunk_path.unlink(missing_ok=True)
        return "blob_not_found"

    code = break_it()
    with pytest.raises(BlobError) as caught:
        decode_output(entry, blobs)
    assert caught.value.code == code

    break_it()
    placeholder = decode_output(entry, blobs, on_missing="placeholder")
    assert placeholder["output_type"] == "display_data"
    assert placeholder["metadata"]["runtimed"]["unavailable"]["error"] == code
    assert_valid_nbformat(placeholder)


@pytest.mark.parametrize("entry", ["{not json", "[1, 2]", '{"output_type": "bogus"}', "a" * 63])
def test_a_broken_inline_entry_raises_or_reads_as_a_placeholder(
    blobs: BlobStore, entry: str
) -> None:
    with pytest.raises(OutputError) as caught:
        decode_output(entry, blobs)
    assert caught.value.code == "bad_output"
    placeholder = decode_output(entry, blobs, on_missing="placeholder")
    assert placeholder["metadata"]["runtimed"]["unavailable"] == {
        "hash": None,
        "error": "bad_output",
    }


def test_decode_output_rejects_an_unknown_mode(blobs: BlobStore) -> None:
    with pytest.raises(OutputError) as caught:
        decode_output("{}", blobs, on_missing="ignore")  # type: ignore[arg-type]
    assert caught.value.code == "bad_argument"


# -- a real kernel -----------------------------------------------------------------------

KERNEL_CODE = """
import sys
from IPython.display import HTML, clear_output, display, update_display
print("gone", flush=True)
clear_output(wait=True)
print("hello", flush=True)
print("world", flush=True)
print("oops", file=sys.stderr, flush=True)
display(HTML("<b>v1</b>"), display_id="d1")
update_display(HTML("<b>v2</b>"), display_id="d1")
42
"""


@pytest.fixture(scope="module")
def kernel_messages() -> Iterator[list[list[dict[str, Any]]]]:
    """IOPub messages of two real executions, as jupyter_client delivers them."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        runs = []
        for code in (KERNEL_CODE, "1 / 0"):
            msg_id = client.execute(code)
            messages = []
            while True:
                msg = client.get_iopub_msg(timeout=30)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                messages.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
            runs.append(messages)
        yield runs
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.kernel
def test_real_kernel_messages_become_valid_outputs(
    blobs: BlobStore, kernel_messages: list[list[dict[str, Any]]]
) -> None:
    log = OutputLog(blobs)
    for msg in kernel_messages[0]:
        log.apply(msg)
    errors = OutputLog(blobs)
    for msg in kernel_messages[1]:
        errors.apply(msg)

    outputs = decoded(log, blobs)
    assert outputs[:3] == [
        {"output_type": "stream", "name": "stdout", "text": "hello\nworld\n"},
        {"output_type": "stream", "name": "stderr", "text": "oops\n"},
        {
            "output_type": "display_data",
            "data": {"text/html": "<b>v2</b>", "text/plain": "<IPython.core.display.HTML object>"},
            "metadata": {},
        },
    ]
    assert outputs[3]["output_type"] == "execute_result"
    assert outputs[3]["data"] == {"text/plain": "42"}
    assert log.display_ids() == {"d1"}
    (error,) = decoded(errors, blobs)
    assert (error["output_type"], error["ename"]) == ("error", "ZeroDivisionError")
    assert_valid_nbformat(*outputs, error)
