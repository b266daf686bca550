"""Notebook signatures made and stored the way nbformat's `NotebookNotary` does, without
importing nbformat.

The daemon checks and stores signatures at every room load and save. Importing
`nbformat.sign` imports all of nbformat and its jsonschema validator, whose format
checkers build a grammar at import: 20 MB of the daemon's 70 MB at start-up, for two
functions. Both are small and fixed by the files they must agree with:

- the signature: an HMAC (sha256, with the user's secret) of every key and value of the
  notebook in sorted-key order, as nbformat's `yield_everything` walks it, the
  notebook's own `metadata.signature` left out;
- the store: nbformat's SQLite schema (table `nbsignatures`, `last_seen` as ISO text),
  culled to three quarters when it holds more than 65,535 signatures.

A store written by either reads in the other; tests/daemon/test_trust.py checks both
against nbformat.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

ALGORITHM = "sha256"
CACHE_SIZE = 65535  # nbformat's SQLiteSignatureStore.cache_size
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS nbsignatures
    (
        id integer PRIMARY KEY AUTOINCREMENT,
        algorithm text,
        signature text,
        path text,
        last_seen timestamp
    )""",
    "CREATE INDEX IF NOT EXISTS algosig ON nbsignatures(algorithm, signature)",
)


def compute_signature(secret: bytes, nb: dict[str, Any]) -> str:
    """nbformat's signature of `nb` (KeyError when it has no `metadata`, as there)."""
    metadata = nb["metadata"]
    if isinstance(metadata, dict) and "signature" in metadata:
        unsigned = {key: value for key, value in metadata.items() if key != "signature"}
        nb = {**nb, "metadata": unsigned}
    digest = hmac.new(secret, digestmod=ALGORITHM)
    for part in _everything(nb):
        digest.update(part)
    return digest.hexdigest()


def _everything(value: Any) -> Iterator[bytes]:
    """nbformat's `yield_everything`: keys sorted, scalars as their str()."""
    if isinstance(value, dict):
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError(f"a notebook key must be a string, not {key!r}")
            yield key.encode()
            yield from _everything(value[key])
    elif isinstance(value, list | tuple):
        for element in value:
            yield from _everything(element)
    elif isinstance(value, str):
        yield value.encode("utf8")
    else:
        yield str(value).encode("utf8")


@contextlib.contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """The store at `path`, closed after the block. A file SQLite cannot read (corrupt,
    not a database) is set aside as `<name>.bak` and a new store made, as nbformat does:
    what it vouched for is untrusted again, never the other way round."""
    try:
        db = _connect(path)
    except sqlite3.DatabaseError as exc:
        log.warning("trust_store_unreadable", path=str(path), error=str(exc), moved_to=".bak")
        path.replace(path.with_name(path.name + ".bak"))
        db = _connect(path)
    try:
        yield db
    finally:
        db.close()


def _connect(path: Path) -> sqlite3.Connection:
    # Made 0600 first: SQLite would create it with the umask's mode.
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    db = sqlite3.connect(path)
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        db.commit()
    except BaseException:
        db.close()
        raise
    return db


def known(db: sqlite3.Connection, digests: list[str]) -> set[str]:
    """Which of `digests` the store holds."""
    found: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT signature FROM nbsignatures WHERE algorithm = ? AND signature IN ({marks})",
            (ALGORITHM, *chunk),
        )
        found.update(row[0] for row in rows)
    return found


def commit(
    db: sqlite3.Connection, *, seen: set[str], new: frozenset[str] | set[str] = frozenset()
) -> None:
    """Mark `seen` signatures used now and insert `new` ones, in one commit, as
    nbformat's store does (which commits once per signature)."""
    if not seen and not new:
        return
    now = datetime.now(tz=UTC).isoformat()  # nbformat's adapter writes this form
    db.executemany(
        "UPDATE nbsignatures SET last_seen = ? WHERE algorithm = ? AND signature = ?",
        [(now, ALGORITHM, digest) for digest in seen],
    )
    db.executemany(
        "INSERT INTO nbsignatures (algorithm, signature, last_seen) VALUES (?, ?, ?)",
        [(ALGORITHM, digest, now) for digest in new],
    )
    db.commit()
    if new:
        (count,) = db.execute("SELECT Count(*) FROM nbsignatures").fetchone()
        if count > CACHE_SIZE:  # keep the most recently seen three quarters
            db.execute(
                "DELETE FROM nbsignatures WHERE id IN (SELECT id FROM nbsignatures "
                "ORDER BY last_seen DESC LIMIT -1 OFFSET ?)",
                (int(0.75 * CACHE_SIZE),),
            )
            db.commit()
