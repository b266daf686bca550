"""BlobStore on a real filesystem: layout, atomicity, races, validation, corruption, gc."""

from __future__ import annotations

import builtins
import hashlib
import multiprocessing
import os
import pathlib
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from runtimed import blob_store
from runtimed.blob_store import BlobError, BlobInfo, BlobStore, GcReport


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_put_get_has_info_round_trip(store: BlobStore) -> None:
    data = b"\x00\x01 some bytes \xff"
    hash_ = store.put(data, "image/png")

    assert hash_ == hashlib.sha256(data).hexdigest()
    assert store.get(hash_) == data
    assert store.has(hash_)
    assert store.info(hash_) == BlobInfo(hash=hash_, size=len(data), media_type="image/png")


def test_media_type_defaults_to_octet_stream(store: BlobStore) -> None:
    hash_ = store.put(b"raw")
    assert store.info(hash_).media_type == "application/octet-stream"


def test_root_is_private_and_blobs_fan_out_two_levels(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "blobs"
    store = BlobStore(root)
    hash_ = store.put(b"fan out")

    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    expected = root / hash_[:2] / hash_[2:4] / hash_
    assert store.path_for(hash_) == expected
    assert expected.read_bytes() == b"fan out"
    assert files_under(root) == [expected, expected.with_name(hash_ + ".meta")]


def test_putting_existing_content_does_not_rewrite_it(store: BlobStore) -> None:
    first = store.put(b"same", "text/plain")
    before = store.path_for(first).stat()

    second = store.put(b"same", "text/html")

    after = store.path_for(first).stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert store.info(first).media_type == "text/plain"  # the first writer's type wins


def test_no_temp_files_are_left_behind(store: BlobStore) -> None:
    hashes = {store.put(bytes([n]) * n) for n in range(1, 20)}
    names = {path.name for path in files_under(store.root)}
    assert names == hashes | {hash_ + ".meta" for hash_ in hashes}


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_leaves_nothing_half_written(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blob_store.os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        store.put(b"never stored")
    monkeypatch.undo()

    hash_ = hashlib.sha256(b"never stored").hexdigest()
    assert not store.has(hash_)
    assert files_under(store.root) == []
    assert store.put(b"never stored") == hash_
    assert store.get(hash_) == b"never stored"


def test_concurrent_threads_writing_the_same_content(store: BlobStore) -> None:
    data = os.urandom(512 * 1024)
    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = set(pool.map(lambda _: store.put(data, "application/x-test"), range(16)))

    (hash_,) = hashes
    assert store.get(hash_) == data
    assert store.info(hash_).media_type == "application/x-test"
    assert [path.name for path in files_under(store.root)] == [hash_, hash_ + ".meta"]


def test_concurrent_processes_writing_the_same_content(store: BlobStore) -> None:
    data = os.urandom(1024 * 1024)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=store.put, args=(data,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    store.put(data)
    for worker in workers:
        worker.join(timeout=60)

    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    hash_ = hashlib.sha256(data).hexdigest()
    assert store.get(hash_) == data
    assert [path.name for path in files_under(store.root)] == [hash_, hash_ + ".meta"]


def test_size_cap(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_blob_size=10)
    assert store.get(store.put(b"x" * 10)) == b"x" * 10
    with pytest.raises(BlobError) as caught:
        store.put(b"x" * 11)
    assert caught.value.code == "blob_too_large"
    assert not store.has(hashlib.sha256(b"x" * 11).hexdigest())


@pytest.mark.parametrize(
    ("data", "media_type"),
    [("text, not bytes", "text/plain"), (b"ok", ""), (b"ok", None), (b"ok", "x" * 256)],
)
def test_bad_put_arguments(store: BlobStore, data: object, media_type: object) -> None:
    with pytest.raises(BlobError) as caught:
        store.put(data, media_type)  # type: ignore[arg-type]
    assert caught.value.code == "bad_value"
    assert files_under(store.root) == []


BAD_HASHES = [
    "../../etc/passwd",
    "../" + "a" * 61,
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "a" * 64 + "\n",
    "g" * 64,
    "\uff41" * 64,  # fullwidth "a"
    "\u0661" * 64,  # Arabic-Indic digit one
    "",
    None,
    b"a" * 64,
    64,
]


@pytest.mark.parametrize("bad", BAD_HASHES)
@pytest.mark.parametrize("operation", ["get", "info", "has", "path_for", "get_json"])
def test_bad_hashes_are_rejected_before_touching_the_filesystem(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch, bad: object, operation: str
) -> None:
    touched: list[str] = []

    def spy(name: str, original):  # type: ignore[no-untyped-def]
        def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
            touched.append(name)
            return original(*args, **kwargs)

        return recorded

    for owner, name in [
        (os, "stat"),
        (os, "open"),
        (os, "lstat"),
        (builtins, "open"),
        (pathlib.Path, "open"),
        (pathlib.Path, "stat"),
        (pathlib.PurePath, "__truediv__"),
    ]:
        monkeypatch.setattr(owner, name, spy(f"{owner.__name__}.{name}", getattr(owner, name)))

    with pytest.raises(BlobError) as caught:
        getattr(store, operation)(bad)
    monkeypatch.undo()

    assert caught.value.code == "bad_hash"
    assert touched == []


def test_missing_blob(store: BlobStore) -> None:
    missing = "0" * 64
    assert not store.has(missing)
    for operation in (store.get, store.info, store.get_json):
        with pytest.raises(BlobError) as caught:
            operation(missing)
        assert caught.value.code == "blob_not_found"


def test_corrupt_content_is_detected_and_quarantined(store: BlobStore) -> None:
    hash_ = store.put(b"the real content")
    path = store.path_for(hash_)
    path.write_bytes(b"the fake content")
    assert store.get(hash_, verify=False) == b"the fake content"

    with capture_logs() as logs, pytest.raises(BlobError) as caught:
        store.get(hash_)

    assert caught.value.code == "blob_corrupt"
    assert not path.exists()
    assert path.with_name(hash_ + ".corrupt").read_bytes() == b"the fake content"
    assert not store.has(hash_)
    assert [entry["event"] for entry in logs] == ["blob_quarantined"]
    assert store.put(b"the real content") == hash_  # the next writer restores it
    assert store.get(hash_) == b"the real content"


def test_put_replaces_a_truncated_blob(store: BlobStore) -> None:
    hash_ = store.put(b"complete content")
    store.path_for(hash_).write_bytes(b"compl")

    assert store.put(b"complete content") == hash_

    assert store.get(hash_) == b"complete content"
    assert store.path_for(hash_).with_name(hash_ + ".corrupt").read_bytes() == b"compl"


def test_json_is_canonical_so_equal_values_share_a_hash(store: BlobStore) -> None:
    first = store.put_json({"b": [1, 2.5, None], "a": {"y": True, "x": "é"}})
    second = store.put_json({"a": {"x": "é", "y": True}, "b": [1, 2.5, None]})

    assert first == second
    assert store.get(first) == '{"a":{"x":"é","y":true},"b":[1,2.5,null]}'.encode()
    assert store.get_json(first) == {"a": {"x": "é", "y": True}, "b": [1, 2.5, None]}
    assert store.info(first).media_type == "application/json"


def test_json_with_a_lone_surrogate_round_trips(store: BlobStore) -> None:
    value = {"text": "half a pair: \ud800"}
    assert store.get_json(store.put_json(value)) == value


@pytest.mark.parametrize("value", [float("nan"), {1, 2}, b"bytes", {"k": object()}])
def test_put_json_rejects_values_json_cannot_hold(store: BlobStore, value: object) -> None:
    with pytest.raises(BlobError) as caught:
        store.put_json(value)
    assert caught.value.code == "not_json"


def test_get_json_of_a_non_json_blob(store: BlobStore) -> None:
    hash_ = store.put(b"\x89PNG not json")
    with pytest.raises(BlobError) as caught:
        store.get_json(hash_)
    assert caught.value.code == "not_json"


def test_iter_hashes_lists_blobs_only(store: BlobStore) -> None:
    hashes = {store.put(b"one"), store.put(b"two"), store.put_json([3])}
    corrupt = store.put(b"to be corrupted")
    store.path_for(corrupt).write_bytes(b"x")
    with pytest.raises(BlobError):
        store.get(corrupt)
    (store.path_for(next(iter(hashes))).parent / ".leftover.tmp").write_bytes(b"partial")
    (store.root / "not-a-fanout-dir").mkdir()

    assert set(store.iter_hashes()) == hashes


def test_gc_keeps_referenced_blobs_and_deletes_the_rest(store: BlobStore) -> None:
    kept = store.put(b"referenced", "text/plain")
    dropped = [store.put(b"a" * 100), store.put(b"b" * 50)]
    directory = store.path_for(kept).parent
    stale = directory / ".stale.tmp"
    stale.write_bytes(b"crashed writer")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = directory / ".fresh.tmp"
    fresh.write_bytes(b"writer at work")

    report = store.gc({kept, "not a hash"})

    assert report == GcReport(blobs_kept=1, blobs_deleted=2, bytes_freed=150, temp_files_deleted=1)
    assert store.get(kept) == b"referenced"
    assert store.info(kept).media_type == "text/plain"
    for hash_ in dropped:
        assert not store.has(hash_)
        assert not store.path_for(hash_).with_name(hash_ + ".meta").exists()
    assert not stale.exists()
    assert fresh.exists()
    assert store.gc({kept}) == GcReport(1, 0, 0, 0)
