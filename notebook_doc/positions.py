"""Fractional indexing: cell order as lowercase hex strings, read as fractions 0.xyz.

A key never ends in "0", so there is always room before it, and between any two valid
keys there is another one. Cells sort by (position, id), which breaks ties left by two
peers that picked the same key concurrently.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import InvalidArgument

__all__ = ["is_valid_position", "key_between", "keys_between"]

_DIGITS: Final = "0123456789abcdef"
_VALID: Final = re.compile(r"[0-9a-f]*[1-9a-f]")
_FIRST: Final = "8"


def is_valid_position(position: str) -> bool:
    """Whether `position` is a key this module can place others around."""
    return _VALID.fullmatch(position) is not None


def key_between(before: str | None, after: str | None) -> str:
    """A key strictly between `before` and `after` (None: the start or the end)."""
    for key in (before, after):
        if key is not None and not is_valid_position(key):
            raise InvalidArgument(f"position {key!r} is not lowercase hex without trailing 0")
    if before is None:
        return _FIRST if after is None else _before(after)
    if after is None:
        return _after(before)
    if before >= after:
        raise InvalidArgument(f"position {before!r} is not before {after!r}")
    return _midpoint(before, after)


def _after(low: str) -> str:
    """A short key above `low`: appending cells grows keys by one digit per 15 appends."""
    for index, digit in enumerate(low):
        if digit != "f":
            return low[:index] + _DIGITS[_DIGITS.index(digit) + 1]
    return low + "1"


def _before(high: str) -> str:
    """A short key below `high` (mirror of `_after`)."""
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
