"""Shared helpers: sync loops between real documents, and raw automerge peers.

Raw `automerge.core` documents stand in for other writers (an older runtimed, a
hostile or buggy client): they write whatever they like, the way a peer could.
"""

from __future__ import annotations

from automerge.core import Document, Message
from automerge.core import SyncState as CoreSyncState

from notebook_doc import NotebookDoc, SyncState

MAX_ROUNDS = 100


def sync(
    a: NotebookDoc,
    b: NotebookDoc,
    state_a: SyncState | None = None,
    state_b: SyncState | None = None,
) -> int:
    """Run the sync protocol between two docs until neither has anything to send (from
    fresh sync states, or the ones given, which are kept for more rounds)."""
    state_a, state_b = state_a or SyncState(), state_b or SyncState()
    for rounds in range(MAX_ROUNDS):
        to_b = a.generate_sync_message(state_a)
        if to_b is not None:
            b.receive_sync_message(state_b, to_b)
        to_a = b.generate_sync_message(state_b)
        if to_a is not None:
            a.receive_sync_message(state_a, to_a)
        if to_a is None and to_b is None:
            return rounds
    raise AssertionError("sync did not converge")


def push_raw(raw: Document, doc: NotebookDoc) -> None:
    """Sync a raw automerge peer into `doc` (and back), the way a client would."""
    raw_state, doc_state = CoreSyncState(), SyncState()
    for _ in range(MAX_ROUNDS):
        message = raw.generate_sync_message(raw_state)
        if message is not None:
            doc.receive_sync_message(doc_state, message.encode())
        reply = doc.generate_sync_message(doc_state)
        if reply is not None:
            raw.receive_sync_message(raw_state, Message.decode(reply))
        if message is None and reply is None:
            return
    raise AssertionError("sync did not converge")


def raw_copy(doc: NotebookDoc) -> Document:
    """A raw peer that starts from `doc`'s state."""
    return Document.load(doc.save())
