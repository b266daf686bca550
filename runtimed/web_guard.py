"""What the WebSocket port checks before the token, and the headers every answer carries.

The token alone does not stop a browser from being used against the daemon:

- DNS rebinding: a site whose name first resolved to itself, then to 127.0.0.1, is
  same-origin with the daemon as far as the browser knows; only the `Host` header
  still says `evil.example`. So a request must name the daemon by a loopback name or
  address (`localhost`, `*.localhost`, 127.0.0.0/8, ::1) unless the daemon listens
  for remote clients (`--ws-allow-remote`).
- Another origin: browsers send `Origin` with every WebSocket handshake and with
  cross-origin requests; it must be this very host and port. Programs (the Python
  and JS clients) send none, and they are not the browser's victims.
- Idle connections cost a file descriptor each: connections that have not yet sent
  their request are capped, in total and per peer address (`ConnectionGate`).

The page's own Content-Security-Policy allows scripts from this origin only: no
inline script, no `eval` (`'wasm-unsafe-eval'` lets the Automerge WebAssembly compile,
and nothing else). Styles may be inline, as JupyterLab's widgets set them.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""Every response but a blob's: the page, its assets, errors."""

BLOB_CSP = "sandbox; default-src 'none'; frame-ancestors 'self'"
"""A blob is kernel output: shown only as inert data, never as this origin's page."""

COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


def split_host(host_header: str) -> str:
    """The name or address of a `Host` header, without its port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_loopback_name(host: str) -> bool:
    """`localhost`, a name under `.localhost` (RFC 6761: never sent to DNS) or a loopback IP."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_refusal(host_header: str | None, *, allow_remote: bool) -> str | None:
    """Why a request's `Host` is refused, or None when it may go on."""
    if not host_header:
        return "no Host header"
    if allow_remote or is_loopback_name(split_host(host_header)):
        return None
    return (
        f"Host {host_header!r} is not a loopback name: open the page at 127.0.0.1 or "
        "localhost (the daemon listens for other machines only with --ws-allow-remote)"
    )


def origin_refusal(origin: str | None, host_header: str | None) -> str | None:
    """Why a request's `Origin` is refused (another site, or `null`), or None."""
    if origin is None:
        return None  # not sent by a browser for its own page's GETs, nor by programs
    parts = urlsplit(origin.strip())
    if parts.scheme in ("http", "https") and parts.netloc.lower() == (host_header or "").lower():
        return None
    return f"Origin {origin!r} is not this page's origin"


class ConnectionGate:
    """Counts connections that have not sent their request yet, in total and per peer.

    `admit` says whether one more may wait; each admitted connection is `release`d
    once its request arrives or it closes, whichever is first.
    """

    def __init__(self, total: int, per_peer: int) -> None:
        self.total = total
        self.per_peer = per_peer
        self.waiting = 0
        self._by_peer: dict[str, int] = {}

    def admit(self, peer: str) -> bool:
        held = self._by_peer.get(peer, 0)
        if self.waiting >= self.total or held >= self.per_peer:
            return False
        self.waiting += 1
        self._by_peer[peer] = held + 1
        return True

    def release(self, peer: str) -> None:
        self.waiting -= 1
        held = self._by_peer[peer] - 1
        if held:
            self._by_peer[peer] = held
        else:
            del self._by_peer[peer]
