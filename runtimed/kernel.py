"""KernelSession: one Jupyter kernel, launched or attached, bridged over asyncio.

jupyter_client's async API starts, restarts and stops the kernel (provisioners,
shutdown escalation); the channels are ours. Each socket has one reader task that
routes by `parent_header.msg_id`, so no caller ever consumes another's replies, and
IOPub is drained in batches with an unlimited receive high-water mark, because a
widget burst outruns any per-message reader (docs/lessons.md).

Messages are decoded by `MessageDecoder`, not `Session.deserialize`: same dict shape,
HMAC checked, but about 8x faster, `header.date` is left as the ISO string the kernel
sent, `buffers` are `bytes`, and there is no replay (digest history) check.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import structlog
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session

from .connection_files import runtime_connection_file
from .log_safety import register_secret

log = structlog.get_logger(__name__)

KernelEventKind = Literal["starting", "started", "restarting", "restarted", "died", "shutdown"]
Channel = Literal["shell", "control"]


@dataclass(frozen=True, slots=True)
class KernelEvent:
    """A lifecycle change the room reports to its peers (`kernel_status`)."""

    kind: KernelEventKind
    reason: str = ""


IopubSink = Callable[[list[dict]], None]
EventSink = Callable[[KernelEvent], None]
ReplySink = Callable[[dict], None]
RelaySink = Callable[[str, list[dict]], None]
"""`(channel, messages)`: IOPub batches, the shell/control/stdin messages whose parent
came from another session (a front end relayed through `send_message`), and lifecycle
events as `("event", [{"kind", "reason"}])`."""

DELIM = b"<IDS|MSG>"
MAX_BATCH = 1000  # messages handed over per drain, so one flood cannot starve the loop
SHUTDOWN_WAIT = 4.0  # jupyter_client: SIGTERM after half of it, SIGKILL at the end
PROCESS_POLL_INTERVAL = 0.1
IOPUB_PROBE = 1.0  # how long a kernel_info round waits for IOPub to show it is subscribed
HEARTBEAT_TIMEOUT = 3.0
CONNECTION_KEYS = {
    "transport": str,
    "ip": str,
    "key": str,
    "signature_scheme": str,
    "shell_port": int,
    "iopub_port": int,
    "stdin_port": int,
    "control_port": int,
    "hb_port": int,
}
_FINAL = frozenset({"dead", "shutdown"})
_NOT_RUNNING = _FINAL | {"starting", "restarting"}


_STDIN_HANDSHAKE = "stdin-handshake"  # a pending-reply key that no msg_id can take


class KernelError(Exception):
    """A kernel operation that failed; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class MalformedMessage(ValueError):
    """Frames from a kernel socket that are not a valid, correctly signed message."""


class MessageDecoder:
    """Wire frames to jupyter_client's message dict, skipping (and logging) bad ones."""

    def __init__(self, session: Session, logger: Any = log) -> None:
        self._auth = session.auth
        self._unpack = _json_loads if session.unpacker == "json" else session.unpack
        self._log = logger

    def decode(self, frames: list[bytes]) -> dict[str, Any] | None:
        """The message, or None (logged) when the frames are malformed or badly signed."""
        try:
            return self._decode(frames)
        except MalformedMessage as exc:
            self._log.warning("malformed kernel message skipped", reason=str(exc))
            return None

    def _decode(self, frames: list[bytes]) -> dict[str, Any]:
        try:
            start = frames.index(DELIM) + 1
        except ValueError:
            raise MalformedMessage("no <IDS|MSG> delimiter") from None
        if len(frames) < start + 5:
            raise MalformedMessage(f"{len(frames) - start} frames after the delimiter, need 5")
        signature, *parts = frames[start : start + 5]
        if self._auth is not None:
            digest = self._auth.copy()
            for part in parts:
                digest.update(part)
            if not hmac.compare_digest(digest.hexdigest().encode(), signature):
                raise MalformedMessage("bad HMAC signature")
        header, parent_header, metadata, content = (self._unpack_dict(part) for part in parts)
        msg_id, msg_type = header.get("msg_id"), header.get("msg_type")
        if not isinstance(msg_id, str) or not isinstance(msg_type, str):
            raise MalformedMessage("header without a string msg_id and msg_type")
        return {
            "header": header,
            "msg_id": msg_id,
            "msg_type": msg_type,
            "parent_header": parent_header,
            "metadata": metadata,
            "content": content,
            "buffers": frames[start + 5 :],
        }

    def _unpack_dict(self, frame: bytes) -> dict[str, Any]:
        try:
            value = self._unpack(frame)
        except Exception as exc:
            raise MalformedMessage(f"undecodable frame: {exc}") from None
        if not isinstance(value, dict):
            raise MalformedMessage(f"expected a JSON object, got {type(value).__name__}")
        return value


def _json_loads(frame: bytes) -> Any:
    """msgspec first (fast); the stdlib for what it refuses (NaN, huge ints, lone surrogates)."""
    try:
        return msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return json.loads(frame)


async def pump_messages(
    sock: zmq.asyncio.Socket,
    decoder: MessageDecoder,
    deliver: Callable[[list[dict]], None],
    logger: Any = log,
) -> None:
    """Forever: await one message, take every other one already waiting, deliver the batch.

    One await per batch instead of per message is what lets the reader keep up with a
    kernel's widget burst. A failing `deliver` is logged; the pump goes on.
    """
    drain = zmq.Socket.shadow(sock.underlying)
    while True:
        raw = [await sock.recv_multipart()]
        while len(raw) < MAX_BATCH:
            try:
                raw.append(drain.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        batch = [msg for msg in map(decoder.decode, raw) if msg is not None]
        if batch:
            try:
                deliver(batch)
            except Exception:
                logger.exception("kernel message handler failed", messages=len(batch))


def execute_content(
    code: str, *, silent: bool = False, store_history: bool = True, allow_stdin: bool = False
) -> dict[str, Any]:
    """An execute_request's content (the daemon's own, and its test and bench clients')."""
    return {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": {},
        "allow_stdin": allow_stdin,
        "stop_on_error": True,
    }


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"exited with code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exited with code {code}"


def _parent_id(msg: dict[str, Any]) -> str:
    msg_id = msg["parent_header"].get("msg_id")
    return msg_id if isinstance(msg_id, str) else ""


def _load_connection_file(path: str) -> dict[str, Any]:
    """Read and check a kernel connection file; KernelError says what is wrong."""
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KernelError("bad_connection_file", f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KernelError("bad_connection_file", f"{path} is not readable JSON: {exc}") from None
    if not isinstance(info, dict):
        raise KernelError("bad_connection_file", f"{path} does not hold a JSON object")
    for key, kind in CONNECTION_KEYS.items():
        if isinstance(info.get(key), bool) or not isinstance(info.get(key), kind):
            raise KernelError(
                "bad_connection_file", f"{path}: {key!r} missing or not a {kind.__name__}"
            )
    return info


class KernelSession:
    """One kernel and its channels. Build it with `launch` or `attach`, never directly."""

    kernel_info: dict | None

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_name: str,
        manager: AsyncKernelManager | None,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_name = kernel_name
        self.owned = manager is not None
        self.connection_file: str | None = None
        self.status = "starting"
        self.kernel_info = None
        self._km = manager
        self._on_iopub = on_iopub
        self._on_event = on_event
        self._on_reply = on_reply
        self.relay: RelaySink | None = None
        self._log = log.bind(kernel_id=kernel_id, kernel_name=kernel_name)
        self._context = zmq.asyncio.Context()
        # Before any socket exists: an IOPub SUB must never drop (lessons.md).
        self._context.setsockopt(zmq.RCVHWM, 0)
        self._client: AsyncKernelClient | None = None
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._stdin_monitor: zmq.asyncio.Socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[str, asyncio.Future[dict]] = {}
        self._iopub_seen = asyncio.Event()
        self._lifecycle = asyncio.Lock()
        self._death_reason = ""
        self._closed = False
        self._startup_timeout = 60.0
        self._heartbeat_timeout = HEARTBEAT_TIMEOUT

    # ------------------------------------------------------------------ construction

    @classmethod
    async def launch(
        cls,
        kernel_name: str = "python3",
        *,
        cwd: str | None = None,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None = None,
        startup_timeout: float = 60,
    ) -> KernelSession:
        """Start a kernel from its kernelspec (provisioner included) and wait until it answers.

        `on_reply` receives every shell/control reply no `request()` awaits, e.g. the
        execute_reply of `execute()` and its execution_count.
        """
        kernel_id = str(uuid.uuid4())
        manager = AsyncKernelManager(
            kernel_name=kernel_name,
            kernel_id=kernel_id,
            connection_file=str(runtime_connection_file(kernel_id)),
        )
        manager.shutdown_wait_time = SHUTDOWN_WAIT
        self = cls(
            kernel_id=kernel_id,
            kernel_name=kernel_name,
            manager=manager,
            on_iopub=on_iopub,
            on_event=on_event,
            on_reply=on_reply,
        )
        self._startup_timeout = startup_timeout
        self._emit("starting")
        ready = False
        try:
            await self._start_process(cwd)
            self._connect(manager.client(context=self._context))
            await self._ready_within(startup_timeout)
            ready = True
        except KernelError as exc:
            self._report_died(exc.message)
            raise KernelError(exc.code, f"kernel {kernel_name!r}: {self._death_reason}") from None
        finally:
            if not ready:  # failed or cancelled: leave no process behind
                await self.aclose()
                await self._stop_kernel(now=True)
        self.connection_file = manager.connection_file
        self._started("started")
        return self

    @classmethod
    async def attach(
        cls,
        connection_file: str,
        *,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None = None,
        timeout: float = 10,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ) -> KernelSession:
        """Bridge a kernel someone else started; it is watched by heartbeat, never killed."""
        info = _load_connection_file(connection_file)
        kernel_name = info.get("kernel_name")
        self = cls(
            kernel_id=Path(connection_file).stem.removeprefix("kernel-"),
            kernel_name=kernel_name if isinstance(kernel_name, str) else "",
            manager=None,
            on_iopub=on_iopub,
            on_event=on_event,
            on_reply=on_reply,
        )
        client = AsyncKernelClient(context=self._context)
        try:
            client.load_connection_info(info)
        except Exception as exc:
            await self.aclose()
            raise KernelError("bad_connection_file", f"{connection_file}: {exc}") from None
        self.connection_file = connection_file
        self._heartbeat_timeout = heartbeat_timeout
        self._emit("starting")
        ready = False
        try:
            self._connect(client)
            await self._ready_within(timeout)
            ready = True
        except KernelError as exc:
            self._report_died(exc.message)
            raise KernelError(exc.code, f"kernel at {connection_file}: {exc.message}") from None
        finally:
            if not ready:
                await self.aclose()
        self._started("started")
        return self

    async def _start_process(self, cwd: str | None) -> None:
        assert self._km is not None
        try:
            await self._km.start_kernel(**({"cwd": cwd} if cwd is not None else {}))
        except NoSuchKernel:
            raise KernelError(
                "no_such_kernel", f"no kernelspec named {self.kernel_name!r}"
            ) from None
        except Exception as exc:
            raise KernelError("kernel_error", f"{type(exc).__name__}: {exc}") from None

    async def _restart_process(self) -> None:
        assert self._km is not None
        try:
            await self._km.restart_kernel(now=False)
        except Exception as exc:
            raise KernelError("kernel_error", f"{type(exc).__name__}: {exc}") from None

    def _connect(self, client: AsyncKernelClient) -> None:
        """Open our sockets on `client`'s ports and start one reader task per channel."""
        self._client = client
        register_secret(client.session.key)  # signs every message: never in a log line
        identity = client.session.bsession  # stdin requests go to the shell's identity
        self._sockets = {
            "iopub": client.connect_iopub(),
            "shell": client.connect_shell(identity=identity),
            "control": client.connect_control(identity=identity),
            "stdin": self._connect_stdin(client, identity),
        }
        decoder = MessageDecoder(client.session, self._log)
        self._iopub_seen.clear()
        handlers = {
            "iopub": self._handle_iopub,
            "shell": functools.partial(self._handle_replies, "shell"),
            "control": functools.partial(self._handle_replies, "control"),
            "stdin": self._handle_stdin,
        }
        for channel, handler in handlers.items():
            pump = pump_messages(self._sockets[channel], decoder, handler, self._log)
            self._spawn(channel, pump)
        if self.owned:
            self._spawn("process", self._watch_process())
        else:
            self._spawn("heartbeat", self._heartbeat())

    def _connect_stdin(self, client: AsyncKernelClient, identity: bytes) -> zmq.asyncio.Socket:
        """The stdin DEALER, watched: the kernel's ROUTER drops an input_request sent
        before our connection's handshake completed, and the cell would hang."""
        sock = client.context.socket(zmq.DEALER)
        sock.linger = 1000
        sock.identity = identity
        if client.curve_publickey is not None:
            sock.curve_secretkey = client.curve_secretkey
            sock.curve_publickey = client.curve_publickey
            sock.curve_serverkey = client.curve_publickey
        self._stdin_monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(client._make_url("stdin"))
        return sock

    async def _stdin_connected(self) -> None:
        monitor, self._stdin_monitor = self._stdin_monitor, None
        if monitor is None:
            return
        # Waited on like a reply, so a kernel that dies meanwhile fails it at once.
        waiter: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending[_STDIN_HANDSHAKE] = waiter
        event = asyncio.ensure_future(monitor.recv_multipart())  # only HANDSHAKE_SUCCEEDED
        event.add_done_callback(
            lambda done: None if waiter.done() or done.cancelled() else waiter.set_result({})
        )
        try:
            await waiter
        finally:
            self._pending.pop(_STDIN_HANDSHAKE, None)
            event.cancel()
            self._sockets["stdin"].disable_monitor()
            monitor.close(linger=0)

    async def _ready_within(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._handshake()
        except TimeoutError:
            raise KernelError(
                "kernel_timeout", f"no kernel_info_reply within {seconds:g} s"
            ) from None

    async def _handshake(self) -> None:
        """kernel_info until both its reply and some IOPub message came back.

        A SUB socket's subscription reaches the kernel some time after connect; only a
        message seen on IOPub proves outputs will not be lost from here on.
        """
        await self._stdin_connected()
        while True:
            reply = await self.request("kernel_info_request", {}, timeout=None)
            self.kernel_info = reply["content"]
            try:
                async with asyncio.timeout(IOPUB_PROBE):
                    await self._iopub_seen.wait()
            except TimeoutError:
                continue
            return

    def _started(self, kind: KernelEventKind) -> None:
        self.status = "idle"
        self._log.info("kernel ready", event_kind=kind)
        self._emit(kind)

    # ------------------------------------------------------------------ tasks

    def _spawn(self, name: str, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(name, work), name=name)
        self._tasks.add(task)

    async def _guard(self, name: str, work: Awaitable[None]) -> None:
        """A task that fails says so and marks the kernel dead: never a silent dead reader."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.exception("kernel task failed", task=name)
            self._report_died(f"{name} task failed: {exc!r}")

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for sock in self._sockets.values():
            sock.close(linger=0)
        self._sockets = {}

    async def _watch_process(self) -> None:
        """Report an owned kernel's exit within ~0.1 s (jupyter_client's own poll rate)."""
        assert self._km is not None
        provisioner = self._km.provisioner
        assert provisioner is not None
        # Provisioners (local or remote) only offer poll(): no exit event to await.
        while (code := await provisioner.poll()) is None:  # noqa: ASYNC110
            await asyncio.sleep(PROCESS_POLL_INTERVAL)
        self._report_died(_exit_reason(code))

    async def _heartbeat(self) -> None:
        """Ping the hb socket each third of the timeout; silence for the timeout is death."""
        assert self._client is not None
        interval = self._heartbeat_timeout / 3
        loop = asyncio.get_running_loop()
        last_beat = loop.time()
        sock: zmq.asyncio.Socket | None = None
        try:
            while True:
                if sock is None:
                    sock = self._client.connect_hb()
                    sock.linger = 0
                await sock.send(b"ping")
                if await sock.poll(interval * 1000, zmq.POLLIN):
                    await sock.recv()
                    last_beat = loop.time()
                    await asyncio.sleep(interval)
                    continue
                sock.close()  # a REQ socket without its reply cannot send again
                sock = None
                if loop.time() - last_beat >= self._heartbeat_timeout:
                    self._report_died(f"no heartbeat for {self._heartbeat_timeout:g} s")
                    return
        finally:
            if sock is not None:
                sock.close()

    # ------------------------------------------------------------------ readers

    def _handle_iopub(self, batch: list[dict]) -> None:
        self._iopub_seen.set()
        if self.status not in _NOT_RUNNING:
            for msg in batch:
                if msg["msg_type"] == "status":
                    state = msg["content"].get("execution_state")
                    if isinstance(state, str):
                        self.status = state
        self._call(self._on_iopub, batch)
        if self.relay is not None:  # after the room: its stores already hold the batch
            self._call(self._relay_batch("iopub"), batch)

    def _relay_batch(self, channel: str) -> IopubSink:
        relay = self.relay
        assert relay is not None
        return functools.partial(relay, channel)

    def _relayed(self, msg: dict) -> bool:
        """A message answering another session's request: the relay's, not ours."""
        if self.relay is None or self._client is None:
            return False
        return msg["parent_header"].get("session") not in (None, self._client.session.session)

    def _handle_replies(self, channel: str, batch: list[dict]) -> None:
        for msg in batch:
            waiter = self._pending.pop(_parent_id(msg), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
            elif self._relayed(msg):
                self._call(self._relay_batch(channel), [msg])
            elif self._on_reply is not None:
                self._call(self._on_reply, msg)
            else:
                self._log.debug("unclaimed reply dropped", msg_type=msg["msg_type"])

    def _handle_stdin(self, batch: list[dict]) -> None:
        for msg in batch:
            if self._relayed(msg):
                self._call(self._relay_batch("stdin"), [msg])
            elif msg["msg_type"] == "input_request":
                self._log.warning("kernel asked for input; answered with an empty string")
                self._send("stdin", "input_reply", {"value": ""}, parent=msg)

    def _call(self, callback: Callable[[Any], None], arg: Any) -> None:
        try:
            callback(arg)
        except Exception:
            self._log.exception("kernel session callback failed", callback=repr(callback))

    def _emit(self, kind: KernelEventKind, reason: str = "") -> None:
        self._call(self._on_event, KernelEvent(kind, reason))
        if self.relay is not None:
            self._call(self._relay_batch("event"), [{"kind": kind, "reason": reason}])

    def _report_died(self, reason: str) -> None:
        if self.status in _FINAL:
            return
        if self.status in ("starting", "restarting"):
            reason = f"failed to {self.status.removesuffix('ing')}: {reason}"
        self.status = "dead"
        self._death_reason = reason
        self._fail_pending(KernelError("kernel_dead", reason))
        self._log.warning("kernel died", reason=reason)
        self._emit("died", reason)

    def _fail_pending(self, error: KernelError) -> None:
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(error)

    # ------------------------------------------------------------------ sending

    def _require_usable(self) -> None:
        if self._closed or self.status == "shutdown":
            raise KernelError("no_kernel", "the kernel session is closed")
        if self.status == "dead":
            raise KernelError("kernel_dead", self._death_reason)

    def _send(
        self,
        channel: str,
        msg_type: str,
        content: dict,
        *,
        metadata: dict | None = None,
        buffers: list[bytes] | None = None,
        parent: dict | None = None,
    ) -> str:
        """Sign and queue one message without blocking; returns its msg_id."""
        self._require_usable()
        if not isinstance(content, dict):
            raise KernelError("bad_message", f"{msg_type} content must be a dict")
        assert self._client is not None
        session = self._client.session
        msg = session.msg(msg_type, content, parent=parent, metadata=metadata)
        try:
            frames = [*session.serialize(msg), *(buffers or ())]
        except (TypeError, ValueError) as exc:
            raise KernelError("bad_message", f"cannot serialize {msg_type}: {exc}") from None
        self._queue(channel, frames, msg_type)
        return msg["header"]["msg_id"]

    def send_message(self, channel: str, msg: dict[str, Any]) -> None:
        """Sign and queue a message as another client wrote it (its own header and
        msg_id), so the kernel's replies name that client's request as their parent."""
        self._require_usable()
        assert self._client is not None
        session = self._client.session
        try:
            frames = [*session.serialize(msg), *(msg.get("buffers") or ())]
        except (TypeError, ValueError, KeyError) as exc:
            raise KernelError("bad_message", f"cannot serialize the message: {exc}") from None
        self._queue(channel, frames, msg["header"].get("msg_type", "message"))

    def _queue(self, channel: str, frames: list[Any], msg_type: str) -> None:
        sock = self._sockets.get(channel)
        if sock is None:
            raise KernelError("kernel_restarting", "the kernel is restarting")
        try:
            zmq.Socket.shadow(sock.underlying).send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            raise KernelError(
                "kernel_busy", f"the kernel is not reading its {channel} channel"
            ) from None
        except TypeError as exc:
            raise KernelError("bad_message", f"bad buffers for {msg_type}: {exc}") from None

    def send_shell(
        self,
        msg_type: str,
        content: dict,
        *,
        metadata: dict | None = None,
        buffers: list[bytes] | None = None,
    ) -> str:
        """Queue a shell message; its reply goes to `on_reply`."""
        return self._send("shell", msg_type, content, metadata=metadata, buffers=buffers)

    async def request(
        self,
        msg_type: str,
        content: dict,
        *,
        channel: Channel = "shell",
        timeout: float | None = 30,
    ) -> dict:
        """Send and await the reply whose parent is this message (None: no timeout)."""
        if channel not in ("shell", "control"):
            raise KernelError("bad_message", f"requests go on shell or control, not {channel!r}")
        msg_id = self._send(channel, msg_type, content)
        waiter = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = waiter
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            raise KernelError(
                "kernel_timeout", f"no reply to {msg_type} within {timeout:g} s"
            ) from None
        finally:
            self._pending.pop(msg_id, None)

    def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
    ) -> str:
        """Queue an execute_request; outputs arrive on IOPub, the reply on `on_reply`."""
        if not isinstance(code, str):
            raise KernelError("bad_message", f"code must be a string, got {type(code).__name__}")
        content = execute_content(
            code, silent=silent, store_history=store_history, allow_stdin=allow_stdin
        )
        return self.send_shell("execute_request", content)

    def send_comm(
        self,
        comm_id: str,
        data: dict,
        *,
        buffers: list[bytes] | None = None,
        msg_type: str = "comm_msg",
        metadata: dict | None = None,
        target_name: str | None = None,
    ) -> str:
        """Send a comm_open / comm_msg / comm_close to the kernel (a client moved a widget)."""
        if msg_type not in ("comm_open", "comm_msg", "comm_close"):
            raise KernelError("bad_message", f"{msg_type!r} is not a comm message type")
        if not isinstance(comm_id, str) or not comm_id:
            raise KernelError("bad_message", "comm_id must be a non-empty string")
        if not isinstance(data, dict):
            raise KernelError("bad_message", f"comm data must be a dict, got {type(data).__name__}")
        content: dict[str, Any] = {"comm_id": comm_id, "data": data}
        if msg_type == "comm_open":
            if not target_name:
                raise KernelError("bad_message", "comm_open needs a target_name")
            content["target_name"] = target_name
        return self.send_shell(msg_type, content, metadata=metadata, buffers=buffers)

    # ------------------------------------------------------------------ lifecycle

    async def interrupt(self) -> None:
        """Interrupt the running cell: a signal for our kernels, a control message otherwise."""
        self._require_usable()
        if self._km is None:
            await self.request("interrupt_request", {}, channel="control", timeout=5)
            return
        try:
            await self._km.interrupt_kernel()
        except RuntimeError as exc:
            raise KernelError("kernel_error", f"interrupt failed: {exc}") from None

    async def restart(self) -> None:
        """Restart an owned kernel (dead or alive); IOPub keeps flowing to the same sink."""
        async with self._lifecycle:
            if self._closed:
                raise KernelError("no_kernel", "the kernel session is closed")
            if self._km is None:
                raise KernelError("not_owned", "an attached kernel cannot be restarted from here")
            self.status = "restarting"
            self._emit("restarting")
            await self._stop_tasks()
            self._fail_pending(KernelError("kernel_restarting", "the kernel is restarting"))
            assert self._client is not None
            # The same Session: a fresh clone would count msg_ids from 0 again.
            session = self._client.session
            try:
                await self._restart_process()
                self._connect(self._km.client(context=self._context, session=session))
                await self._ready_within(self._startup_timeout)
            except KernelError as exc:
                self._report_died(exc.message)
                raise KernelError(exc.code, self._death_reason) from None
            self.connection_file = self._km.connection_file
            self._started("restarted")

    async def shutdown(self) -> None:
        """Stop bridging; an owned kernel is also stopped (request, SIGTERM, SIGKILL)."""
        async with self._lifecycle:
            if self.status == "shutdown":
                return
            await self.aclose()
            if self._km is not None:
                await self._stop_kernel(now=False)
            self.status = "shutdown"
            self._log.info("kernel shut down")
            self._emit("shutdown")

    async def aclose(self) -> None:
        """Stop every reader and close the sockets; the kernel process is left alone."""
        if self._closed:
            return
        self._closed = True
        await self._stop_tasks()
        self._fail_pending(KernelError("no_kernel", "the kernel session is closed"))
        self._context.destroy(linger=0)

    async def _stop_kernel(self, *, now: bool) -> None:
        """jupyter_client's escalation, bounded by SHUTDOWN_WAIT (+5 s after SIGKILL)."""
        assert self._km is not None
        try:
            if self._km.has_kernel:
                await self._km.shutdown_kernel(now=now)
            else:
                await self._km.cleanup_resources()
        except Exception:
            self._log.exception("kernel shutdown failed")
