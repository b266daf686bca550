"""ipykernel, unchanged except that its IOPub socket never drops (send high-water mark 0).

A real kernel's IOPub drops messages on its own side when the machine is overloaded
and its I/O thread falls 1000 messages behind (lessons.md); no subscriber can prevent
that. Tests that count every message of a burst run this kernel, so a missing message
can only be the bridge's fault.
"""

import zmq
from ipykernel.kernelapp import launch_new_instance

_create_socket = zmq.Context.socket


def _socket(self: zmq.Context, socket_type: int, **kwargs: object) -> zmq.Socket:
    sock = _create_socket(self, socket_type, **kwargs)
    if socket_type == zmq.XPUB:
        sock.sndhwm = 0
    return sock


zmq.Context.socket = _socket  # type: ignore[method-assign]

if __name__ == "__main__":
    launch_new_instance()
