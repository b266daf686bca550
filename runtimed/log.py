"""structlog set-up: readable lines on a terminal, JSON lines for machines, and a
size-rotated file for a daemon that runs in the background with no terminal at all.

structlog and stdlib logging (jupyter_client, asyncio) end in the same handler, so
every line of the daemon, ours or a library's, has one format and one destination.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import stat
import sys
from pathlib import Path
from typing import Literal, TextIO

import structlog

from .log_safety import LOG_REPEAT_INTERVAL, RepeatFilter, scrub

LogFormat = Literal["console", "json"]

# A detached daemon's log: rotated at this size, with this many old files kept.
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
# Our own loggers follow the requested level; libraries stay at INFO or above.
OWN_LOGGERS = ("runtimed", "notebook_doc")
# One line per HTTP request or WebSocket connection: only at debug.
ACCESS_LOGGERS = ("runtimed.daemon.websocket.wire",)


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "console",
    stream: TextIO | None = None,
    log_file: Path | None = None,
    repeat_interval: float = LOG_REPEAT_INTERVAL,
) -> None:
    """Route structlog and stdlib logging to `log_file` (rotated) or to `stream`; a
    library's line repeated within `repeat_interval` seconds is written once."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = PrivateRotatingFileHandler(
            log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
        colors = False
    else:
        stream = stream or sys.stderr
        handler = logging.StreamHandler(stream)
        colors = stream.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=colors)
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                scrub,
                renderer,
            ],
        )
    )
    handler.addFilter(RepeatFilter(repeat_interval))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for previous in root.handlers:
        previous.close()  # a file handler it replaces lets go of its file
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
    for name in ACCESS_LOGGERS:
        quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
        logging.getLogger(name).setLevel(quiet)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that only its owner can read: created 0600, tightened to 0600
    if an older file of ours was looser, and never opened through a symbolic link."""

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.baseFilename, flags, 0o600)
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)
