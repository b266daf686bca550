"""What may reach a log line: no secret, no terminal control, no flood.

- Secrets: the WebSocket token and every kernel's signing key are registered here when
  they come into being (`register_secret`) and replaced by `[redacted]` in every value
  of every line, ours or a library's, whatever the level. Query strings of logged
  request lines and `Authorization` values are cut too, so a guessed or stale token
  is not written either.
- Control characters: a client name, a notebook id or a request path comes from
  outside; an escape sequence in it must not drive the terminal of whoever reads the
  log, nor a newline forge a line. Each is written as `\\xNN` (`\\uNNNN` for Unicode
  controls); tracebacks keep their line breaks.
- Floods: a library's line repeated faster than once every few seconds (asyncio's
  "out of system resource" accept errors, websockets' "connection closed" or a
  handshake failure) is written once per interval, with the count of those left out.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
from collections.abc import MutableMapping
from typing import Any

REDACTED = "[redacted]"
# A library's repeated line passes once per this many seconds (`serve --log-repeat-interval`).
LOG_REPEAT_INTERVAL = 10.0
MULTILINE_KEYS = frozenset({"exception", "stack"})

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_re: re.Pattern[str] | None = None

# The query of a logged HTTP request line (`GET /ws?token=… HTTP/1.1`), and credentials
# anywhere (`token=…` in a URL, `Bearer …`).
_QUERY = re.compile(r"\b((?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) [^\s?]*)\?\S*")
_CREDENTIALS = re.compile(r"(?i)\b(bearer\s+|basic\s+|token=)[^\s&\"',]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def register_secret(secret: str | bytes) -> None:
    """From now on, `secret` never appears in a log line."""
    text = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
    if len(text) < 8:  # an empty or trivial key would redact ordinary words
        return
    global _secret_re
    with _secrets_lock:
        if text in _secrets:
            return
        _secrets.add(text)
        alternatives = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in alternatives))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str, *, multiline: bool = False) -> str:
    """`text` without secrets, query strings or control characters."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _QUERY.sub(r"\1?" + REDACTED, text)
    text = _CREDENTIALS.sub(r"\1" + REDACTED, text)
    return (_CONTROL_KEEP_NEWLINE if multiline else _CONTROL).sub(_escape, text)


def _clean_value(value: Any, multiline: bool = False) -> Any:
    if isinstance(value, str):
        return clean(value, multiline=multiline)
    if isinstance(value, bytes):
        return clean(value.decode("utf-8", errors="backslashreplace"))
    if isinstance(value, dict):
        return {_clean_value(k): _clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return clean(str(value))


def scrub(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: every value of the line cleaned (see `clean`)."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _clean_value(value, multiline=key in MULTILINE_KEYS)
    return event_dict


class Throttle:
    """At most one occurrence of each key per `interval` seconds; counts the others."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[Any, float] = {}
        self._dropped: dict[Any, int] = {}

    def passes(self, key: Any) -> int | None:
        """None when this occurrence is left out, else how many were left out before it."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._dropped.pop(key, 0)


class RepeatFilter(logging.Filter):
    """Lets a library's repeated line through once per `interval` seconds.

    Keyed by logger and message template; the first of a burst passes, the others are
    counted and the next one to pass says how many were left out. Our own structlog
    events (their message is the event dict) and debug lines pass untouched.
    """

    def __init__(self, interval: float = LOG_REPEAT_INTERVAL) -> None:
        super().__init__()
        self.throttle = Throttle(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO or isinstance(record.msg, dict):
            return True
        dropped = self.throttle.passes((record.name, str(record.msg)))
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like this were left out)"
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            # Running out of descriptors or memory is a state, not a bug: one line says it.
            record.msg = f"{record.msg}: {exc.strerror}"
            record.exc_info = None
            record.exc_text = None
        return True


RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
