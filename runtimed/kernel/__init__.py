"""The kernel bridge: one Jupyter kernel, launched or attached, its channels and lifecycle.

- `session`: `KernelSession`, the lifecycle and request/reply routing the room uses;
- `connection`: one connection of a session to its kernel (runner, handshake, end);
- `runner`: the task that holds a connection's tasks, run in its owner's group;
- `transport`: the `KernelTransport` seam between the session and the channels;
- `zmq_channels`: the ZMQ transport (one reader per socket, heartbeat);
- `process`: a kernel process we own (start, restart, watch, stop);
- `requests`: what the room asks of a kernel (requests, executions, comm messages);
- `content`: the request contents we send, checked;
- `inbox`: where received messages go (replies to their waiters, the rest onward);
- `decode`: wire frames to message dicts;
- `connection_files`: reading, placing and finding connection files.
"""

from .content import execute_content
from .events import KernelError, KernelEvent, KernelEventKind
from .session import KernelSession
from .transport import KernelTransport

__all__ = [
    "KernelError",
    "KernelEvent",
    "KernelEventKind",
    "KernelSession",
    "KernelTransport",
    "execute_content",
]
