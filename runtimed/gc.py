"""Which blobs a notebook still needs, and deleting the ones none needs.

A doc refers to blobs in three places (docs/schema.md, "Blobs"): cell output entries
that are hashes of output manifests, an Output widget's `comms[id].outputs`, and
`{"$blob": hash}` values inside a comm's state. A manifest can itself refer to chunk
blobs (a long stream). Saved .ipynb files hold resolved outputs, never hashes, so the
docs alone decide. Blobs younger than `min_age` are kept whatever the docs say: a flush
may have stored one a moment before the doc that names it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from notebook_doc import NotebookDoc

from .blob_store import HASH_RE, BlobError, BlobStore, GcReport

log = structlog.get_logger(__name__)

DEFAULT_MIN_AGE = 3600.0


def referenced_blobs(doc: NotebookDoc, blobs: BlobStore) -> set[str]:
    """Every blob hash `doc` needs, manifests' own references included."""
    found: set[str] = set()
    manifests = [entry for cell in doc.get_cells() for entry in cell.outputs if _is_hash(entry)]
    for comm in doc.get_comms():
        manifests.extend(comm.outputs)
        found |= _refs_in(comm.state)
    for manifest in manifests:
        found.add(manifest)
        try:
            found |= _refs_in(blobs.get_json(manifest))
        except BlobError as exc:  # already missing or corrupt: nothing more to keep
            log.info("manifest_unreadable", hash=manifest, error=exc.message)
    return found


def collect_garbage(
    docs: Iterable[NotebookDoc], blobs: BlobStore, *, min_age: float = DEFAULT_MIN_AGE
) -> GcReport:
    """Delete the blobs no doc in `docs` refers to (and that are older than `min_age`)."""
    keep: set[str] = set()
    for doc in docs:
        keep |= referenced_blobs(doc, blobs)
    return blobs.gc(keep, min_age=min_age)


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and HASH_RE.fullmatch(value) is not None


def _refs_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        ref = value.get("$blob")
        if len(value) == 1 and _is_hash(ref):
            return {ref}
        return set().union(*(_refs_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs_in(v) for v in value)) if value else set()
    return set()
