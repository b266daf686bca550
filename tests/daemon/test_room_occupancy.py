"""The burst window a room's number of peers sets (docs/protocol.md, "Pacing"): a
burst's doc changes at most four times per pacing spacing, never more often than the
coalescing window."""

from __future__ import annotations

import pytest

from runtimed.config import Settings
from runtimed.daemon.room_occupancy import burst_window


@pytest.mark.parametrize(
    ("peers", "window"), [(0, 0.016), (1, 0.016), (6, 0.016), (7, 0.0175), (50, 0.125)]
)
def test_the_burst_window_widens_with_the_peers_past_the_coalescing_window(
    peers: int, window: float
) -> None:
    settings = Settings(coalesce_window=0.016, room_sync_rate=100.0)
    assert burst_window(peers, settings) == pytest.approx(window)
