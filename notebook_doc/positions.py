"""Fractional indexing: cell order as lowercase hex strings, read as fractions 0.xyz.

Any non-empty lowercase hex string is a readable position (docs/schema.md allows no
less), and cells sort by (position, id) as plain strings. Keys written here never end
in "0", so there is always room before them. A foreign key can leave no room at all:
nothing sorts between "8" and "80" (equal as fractions), nor before "0" or "00".
`key_between` raises NoRoom then, and the caller re-keys the neighbours (`rekey_span`).
"""

from __future__ import annotations

import re
from typing import Final

from .errors import InvalidArgument

__all__ = [
    "NoRoom",
    "is_readable_position",
    "is_valid_position",
    "key_between",
    "keys_between",
    "rekey_span",
]

_DIGITS: Final = "0123456789abcdef"
_READABLE: Final = re.compile(r"[0-9a-f]+")
_VALID: Final = re.compile(r"[0-9a-f]*[1-9a-f]")
_FIRST: Final = "8"


class NoRoom(InvalidArgument):
    """No key written here fits between the two (equal as fractions, or nothing below)."""


def is_readable_position(position: str) -> bool:
    """Whether `position` is one the schema allows (any non-empty lowercase hex)."""
    return _READABLE.fullmatch(position) is not None


def is_valid_position(position: str) -> bool:
    """Whether `position` is a key this module writes (lowercase hex, no trailing 0)."""
    return _VALID.fullmatch(position) is not None


def _fraction(position: str) -> str:
    """The position's value as a comparable string (trailing zeros carry no value)."""
    return position.rstrip("0")


def key_between(before: str | None, after: str | None) -> str:
    """A written key strictly between `before` and `after` (None: the start or the end)."""
    for key in (before, after):
        if key is not None and not is_readable_position(key):
            raise InvalidArgument(f"position {key!r} is not lowercase hex")
    if before is not None and after is not None and before > after:
        raise InvalidArgument(f"position {before!r} is not before {after!r}")
    if after is not None and _fraction(after) == _fraction(before or ""):
        raise NoRoom(f"no position fits between {before!r} and {after!r}")
    if before is None:
        return _FIRST if after is None else _before(_fraction(after))
    if after is None:
        return _after(before)
    return _midpoint(before, _fraction(after))


def _after(low: str) -> str:
    """A short key above `low`: appending cells grows keys by one digit per 15 appends."""
    for index, digit in enumerate(low):
        if digit != "f":
            return low[:index] + _DIGITS[_DIGITS.index(digit) + 1]
    return low + "1"


def _before(high: str) -> str:
    """A short key below `high`, which has no trailing 0 (mirror of `_after`)."""
    digit = _DIGITS.index(high[0])
    if digit > 1:
        return _DIGITS[digit - 1]
    if digit == 1:
        return "1" if len(high) > 1 else "0f"
    return "0" + _before(high[1:])


def _midpoint(low: str, high: str | None) -> str:
    """Shortest-ish key in (low, high); `low` may be "" (zero), `high` None (one)."""
    if high is not None:
        shared = 0
        while shared < len(high) and (low[shared] if shared < len(low) else "0") == high[shared]:
            shared += 1
        if shared:
            return high[:shared] + _midpoint(low[shared:], high[shared:])
    low_digit = _DIGITS.index(low[0]) if low else 0
    high_digit = _DIGITS.index(high[0]) if high is not None else len(_DIGITS)
    if high_digit - low_digit > 1:
        return _DIGITS[(low_digit + high_digit) // 2]
    if high is not None and len(high) > 1:
        return high[0]
    return _DIGITS[low_digit] + _midpoint(low[1:], None)


def keys_between(before: str | None, after: str | None, count: int) -> list[str]:
    """`count` ascending keys between `before` and `after`, for a bulk import or a repair."""
    if count <= 0:
        return []
    middle = key_between(before, after)
    left = count // 2
    return [
        *keys_between(before, middle, left),
        middle,
        *keys_between(middle, after, count - left - 1),
    ]


def rekey_span(positions: list[str], slot: int, count: int) -> tuple[int, int, list[str]]:
    """Room for `count` keys at `slot` of the sorted `positions`, re-keying neighbours.

    Returns (start, stop, keys): the cells at positions[start:stop] take the first
    slot-start and last stop-slot keys (in their order), the new cells the middle
    `count`. Only the neighbours that leave no room move: the run around `slot` whose
    positions equal the neighbours' as fractions (ties included), bounded by the
    nearest positions with a different value, between which there is always room.
    """
    anchor = positions[slot - 1] if slot > 0 else positions[slot]
    value = _fraction(anchor) if slot > 0 else ""
    start, stop = slot, slot
    while start > 0 and _fraction(positions[start - 1]) == value:
        start -= 1
    while stop < len(positions) and _fraction(positions[stop]) == value:
        stop += 1
    low = positions[start - 1] if start > 0 else None
    high = positions[stop] if stop < len(positions) else None
    return start, stop, keys_between(low, high, stop - start + count)
