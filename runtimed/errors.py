"""The one error base: every error that crosses a boundary has a (code, message) pair.

`code` is a spec error code from docs/errors.md (snake_case, for programs); `message`
is for people. Subclasses say where an error comes from (the wire, a request, the
kernel, a blob); handlers that only need to answer a client catch `RuntimedError`.
This module imports nothing, so every layer (the sans-I/O protocol included) may use it.
"""

from __future__ import annotations

__all__ = ["RequestFailed", "RuntimedError"]


class RuntimedError(Exception):
    """A failure with a spec error `code` and a human `message`."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestFailed(RuntimedError):
    """A request the daemon could not carry out; becomes an error RESPONSE."""
