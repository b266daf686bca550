"""The page places cells with the same fractional keys as notebook_doc/positions.py."""

from __future__ import annotations

import itertools
import json
import random

from notebook_doc.positions import key_between
from tests.web.conftest import run_node


def some_pairs() -> list[tuple[str | None, str | None]]:
    """Ends, neighbours, crowded gaps and long keys, built the way cells get them."""
    keys = [key_between(None, None)]
    rng = random.Random(7)
    for _ in range(300):
        index = rng.randrange(len(keys) + 1)
        before = keys[index - 1] if index else None
        after = keys[index] if index < len(keys) else None
        keys.insert(index, key_between(before, after))
    pairs: list[tuple[str | None, str | None]] = [(None, None), (None, keys[0]), (keys[-1], None)]
    pairs += list(itertools.pairwise(keys))
    pairs += [("0f", "1"), ("1", "2"), ("7ff", "8"), ("8", "81"), ("f", None), ("ff", None)]
    return pairs


async def test_js_positions_match_python() -> None:
    pairs = some_pairs()
    js_keys = await run_node("js_positions.mjs", json.dumps(pairs))
    assert js_keys == [key_between(before, after) for before, after in pairs]
