"""The SWITCH frames a client sends when the room compacts (docs/protocol.md, Compaction).

Changes the client made after the daemon's notice go out in SWITCH frames before any
frame of the new epoch; each frame holds whole changes and stays under the frame cap.
"""

from __future__ import annotations

from ..wire import Connection, Switch


def switch_frames(conn: Connection, epoch: int, changes: list[bytes]) -> list[bytes]:
    """SWITCH frames holding whole changes each under the frame cap; the last says so."""
    budget = (conn.max_frame_size - 1024) * 3 // 4  # base64 grows by 4/3
    batches: list[list[bytes]] = [[]]
    size = 0
    for change in changes:
        if batches[-1] and size + len(change) > budget:
            batches.append([])
            size = 0
        batches[-1].append(change)
        size += len(change)
    return [
        conn.send(Switch(epoch, tuple(batch), more=index < len(batches) - 1))
        for index, batch in enumerate(batches)
    ]
