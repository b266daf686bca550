"""`runtimed start|status|stop|logs`: a detached daemon, one per socket, found again."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from runtimed.client import Client, ClientError
from runtimed.config import lock_path
from runtimed.service.lock import process_alive
from tests.bridge.helpers import run_cell
from tests.service.conftest import RUNTIMED, Service, wait_gone


def started_pid(output: str) -> int:
    match = re.search(r"started \(pid (\d+)\)", output)
    assert match, output
    return int(match.group(1))


@pytest.mark.kernel
async def test_start_status_stop_round_trip(service: Service) -> None:
    start = await asyncio.to_thread(service.cli, "start")
    pid = started_pid(start.stdout)
    assert f"socket:   {service.socket}" in start.stdout
    assert f"log:      {service.log_file}" in start.stdout
    daemon = psutil.Process(pid)
    assert daemon.ppid() != os.getpid()  # detached: `start` returned, nobody waits on it
    assert os.getsid(pid) == pid  # its own session: no terminal signals reach it
    assert lock_path(service.socket).read_text().strip() == str(pid)

    async with Client("nb-1", socket_path=service.socket) as client:
        await client.request("launch_kernel")
        kernel_pid = int((await run_cell(client, "import os; print(os.getpid())"))[0]["text"])
        info = json.loads((await asyncio.to_thread(service.cli, "status", "--json")).stdout)
        text = (await asyncio.to_thread(service.cli, "status")).stdout

    assert info["pid"] == pid
    assert info["socket"] == str(service.socket)
    assert info["data_dir"] == str(service.data_dir)
    assert [(r["notebook_id"], r["peers"]) for r in info["rooms"]] == [("nb-1", 1)]
    assert [(k["notebook_id"], k["status"]) for k in info["kernels"]] == [("nb-1", "idle")]
    assert f"is running (pid {pid})" in text
    assert "nb-1  peers=1" in text
    assert "python3 (idle)  nb-1" in text

    logs = (await asyncio.to_thread(service.cli, "logs", "-n", "200")).stdout
    assert "listening" in logs
    assert "peer_joined" in logs

    stop = await asyncio.to_thread(service.cli, "stop")
    assert f"runtimed (pid {pid}) stopped" in stop.stdout
    # `stop` returns once the daemon is gone, its kernel shut down and its room saved.
    assert not process_alive(pid)
    assert not process_alive(kernel_pid)
    assert not service.socket.exists()
    assert list((service.data_dir / "docs").glob("*.automerge"))
    status = await asyncio.to_thread(service.cli, "status", check=False)
    assert status.returncode == 3
    assert "not running" in status.stderr
    again = await asyncio.to_thread(service.cli, "stop")
    assert "not running" in again.stdout


def test_second_start_reports_the_running_daemon(service: Service) -> None:
    pid = started_pid(service.cli("start").stdout)
    second = service.cli("start")
    assert f"already running (pid {pid})" in second.stdout
    assert [p.pid for p in service.daemons()] == [pid]
    # `serve` in the foreground is refused by the lock, and says who holds it.
    serve = service.cli("serve", check=False)
    assert serve.returncode == 1
    assert f"(pid {pid}) is already listening on {service.socket}" in serve.stderr
    assert [p.pid for p in service.daemons()] == [pid]


def test_start_takes_over_from_a_sigkilled_daemon(service: Service) -> None:
    pid = started_pid(service.cli("start").stdout)
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    # Killed, it removed nothing: the socket and its pid in the lock file stay behind.
    assert service.socket.exists()
    assert lock_path(service.socket).read_text().strip() == str(pid)

    status = service.cli("status", check=False)
    assert status.returncode == 3
    assert "not running" in status.stderr

    new_pid = started_pid(service.cli("start").stdout)
    assert new_pid != pid
    info = json.loads(service.cli("status", "--json").stdout)
    assert info["pid"] == new_pid
    assert lock_path(service.socket).read_text().strip() == str(new_pid)
    assert "stale_socket_removed" in service.log_file.read_text()


async def test_ten_concurrent_autostarting_clients_get_one_daemon(service: Service) -> None:
    clients = [Client(socket_path=service.socket, autostart=True) for _ in range(10)]
    await asyncio.gather(*(client.connect() for client in clients))
    try:
        infos = await asyncio.gather(*(client.request("daemon_info") for client in clients))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    pids = {info["pid"] for info in infos}
    assert len(pids) == 1
    assert [p.pid for p in service.daemons()] == list(pids)
    reports = [c.autostart_report for c in clients if c.autostart_report]
    assert sum("started (pid" in report for report in reports) == 1
    assert service.log_file.read_text().count("listening on") == 1


def test_a_client_without_autostart_says_how_to_start(service: Service) -> None:
    result = service.cli("ls", "--no-autostart", check=False)
    assert result.returncode == 1
    assert "runtimed start" in result.stderr
    assert not service.daemons()


def test_ls_autostarts_and_says_so(service: Service) -> None:
    result = service.cli("ls", "--json")
    assert json.loads(result.stdout) == []
    pid = started_pid(result.stderr)
    assert [p.pid for p in service.daemons()] == [pid]


def test_start_failure_shows_the_end_of_the_log(service: Service, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    result = service.cli("start", "--data-dir", str(blocker / "data"), check=False)
    assert result.returncode == 1
    assert "the daemon exited before answering" in result.stderr
    assert f"last lines of {service.log_file}" in result.stderr
    assert "NotADirectoryError" in result.stderr
    assert not service.daemons()


def test_logs_follow_prints_new_lines(service: Service) -> None:
    service.cli("start")
    follower = subprocess.Popen(
        [*RUNTIMED, "logs", "-f", "-n", "1"],
        stdout=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a suite started in the background (`make
        # test &`, nohup) hands its children SIGINT ignored, and then nothing stops it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline()  # the backlog line: it is following now
        service.cli("cat", "followed-notebook", "--create")
        for line in follower.stdout:
            if "peer_joined" in line:
                break
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            code = follower.wait(30)
        finally:
            follower.kill()  # only one that did not stop is still there to kill
            assert follower.stdout is not None
            follower.stdout.close()
    assert code == 0


async def test_a_failed_autostart_shows_the_end_of_the_log(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    monkeypatch.setenv("RUNTIMED_DATA_DIR", str(blocker / "data"))
    with pytest.raises(ClientError) as caught:
        async with Client("nb", socket_path=service.socket, autostart=True):
            pass
    assert caught.value.code == "autostart_failed"
    assert f"no daemon on {service.socket}, and `runtimed start` failed" in caught.value.message
    assert f"last lines of {service.log_file}" in caught.value.message
    assert "NotADirectoryError" in caught.value.message


def test_start_with_ws_serves_the_page_and_keeps_its_token_out_of_the_log(
    service: Service,
) -> None:
    import socket as socket_module
    import urllib.error
    import urllib.request

    with socket_module.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = service.cli("start", "--ws", f"127.0.0.1:{port}")
    [page] = [line.split()[-1] for line in started.stdout.splitlines() if line.startswith("page:")]
    assert page.startswith(f"http://127.0.0.1:{port}/?token=")
    with urllib.request.urlopen(page, timeout=10) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:  # what the page reads: token only
        urllib.request.urlopen(f"http://127.0.0.1:{port}/blob/{'0' * 64}", timeout=10)
    assert refused.value.code == 401
    refused.value.close()
    service.cli("stop")
    token = page.partition("?token=")[2]
    log = service.log_file.read_text()
    assert f"http://127.0.0.1:{port}/ (token in " in log  # the detached daemon's stderr
    assert token not in log
