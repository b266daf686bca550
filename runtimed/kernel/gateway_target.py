"""Where kernels on a Kernel Gateway run and how patiently they are talked to.

Apart from the REST client (gateway_rest.py, httpx) so that the daemon, which reads
this from its Settings at start-up, imports httpx only when it starts such a kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..log_safety import register_secret
from .events import KernelError


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """Where the kernels run and how patiently they are talked to (Settings' gateway_*)."""

    url: str
    token: str | None = None
    timeout: float = 20.0
    reconnect_timeout: float = 30.0
    poll_interval: float = 2.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise KernelError("bad_request", f"gateway URL {self.url!r} is not http(s)://host…")
        if self.token:
            register_secret(self.token)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def http_url(self, path: str) -> str:
        return self.url.rstrip("/") + path

    def ws_url(self, path: str) -> str:
        """The same gateway's WebSocket URL (ws for http, wss for https)."""
        parts = urlsplit(self.http_url(path))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
