"""The detached daemon's log: one rotating file, read back by `runtimed logs [-f]`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from runtimed import log as runtimed_log
from runtimed.service.background import follow, tail


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in runtimed_log.OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()


def test_daemon_and_library_lines_share_one_rotating_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setattr(runtimed_log, "LOG_MAX_BYTES", 2000)
    log_file = tmp_path / "state" / "runtimed.log"
    runtimed_log.configure_logging("debug", "json", log_file=log_file)
    ours = structlog.get_logger("runtimed.daemon.room").bind(room_id="r1")
    for n in range(100):
        ours.debug("tick", n=n)
    logging.getLogger("jupyter_client").warning("from a library")
    logging.getLogger("jupyter_client").debug("library debug stays out")

    files = sorted(log_file.parent.iterdir())
    assert [f.name for f in files] == [f"runtimed.log{s}" for s in ("", ".1", ".2", ".3")]
    assert all(f.stat().st_size <= 2000 for f in files)
    lines = [json.loads(line) for line in tail(log_file, 1000)]
    assert lines[-1] == {
        "event": "from a library",
        "level": "warning",
        "logger": "jupyter_client",
        "timestamp": lines[-1]["timestamp"],
    }
    assert lines[-2]["event"] == "tick"
    assert lines[-2]["room_id"] == "r1"
    assert lines[-2]["n"] == 99


def test_follow_prints_the_backlog_then_new_lines_across_a_rotation(tmp_path: Path) -> None:
    log_file = tmp_path / "runtimed.log"
    log_file.write_text("old 1\nold 2\nold 3\n")
    lines = follow(log_file, backlog=2, poll=0.01)
    assert [next(lines), next(lines)] == ["old 2", "old 3"]

    with log_file.open("a") as f:
        f.write("new 1\npart")
    assert next(lines) == "new 1"
    with log_file.open("a") as f:
        f.write("ial\n")
    assert next(lines) == "partial"  # a line is printed once it is whole

    log_file.rename(tmp_path / "runtimed.log.1")
    log_file.write_text("after rotation\n")
    assert next(lines) == "after rotation"
    lines.close()


def test_tail_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert tail(tmp_path / "nothing.log", 20) == []
