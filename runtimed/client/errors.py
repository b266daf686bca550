"""`ClientError`: how a client sees every failure, the daemon's refusals and lost connections."""

from __future__ import annotations

from ..errors import RuntimedError

__all__ = ["ClientError"]


class ClientError(RuntimedError):
    """Something the daemon refused or a connection that failed; `code` is the spec's."""
