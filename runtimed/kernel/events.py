"""What a kernel session tells its owner: lifecycle events and the errors of its calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import RuntimedError

KernelEventKind = Literal[
    "starting", "started", "restarting", "restarted", "reconnected", "died", "shutdown"
]


@dataclass(frozen=True, slots=True)
class KernelEvent:
    """A lifecycle change the room reports to its peers (`kernel_status`)."""

    kind: KernelEventKind
    reason: str = ""
    code: str = ""  # for `died`: the error code peers get (kernel_died, gateway_…)


class KernelError(RuntimedError):
    """A kernel operation that failed; `code` is the protocol's error code."""
