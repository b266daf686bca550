"""The usual set-up: a kernel the bench starts, a daemon attached to it, and two clients.

The daemon attaches (rather than launches) so that a baseline reader can subscribe to
the very same kernel and see the very same messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .context import BenchContext
from .kernel_code import NEW_SLIDER
from .observe import Observer, ValueWatch
from .procs import DaemonProcess, Helper, Kernel


@dataclass(slots=True)
class Rig:
    kernel: Kernel | None  # None: the daemon launched the kernel itself
    daemon: DaemonProcess
    actor: Observer  # runs the code
    watcher: Observer  # the "second client" whose view is timed

    async def new_slider(self, name: str, observer: Observer | None = None) -> ValueWatch:
        """Create a slider in the kernel; a watch on it (by default the watcher's) once
        that client's doc has it."""
        observer = observer or self.watcher
        comm_id = (await self.actor.run_cell(NEW_SLIDER.format(name=name))).strip()
        watch = observer.watch(comm_id)
        await observer.until(lambda: watch.doc_value == 0, 30, f"slider {name} in the doc")
        return watch


@asynccontextmanager
async def rig(
    ctx: BenchContext, key: str, *, launch: str | None = None, **daemon_options: Any
) -> AsyncIterator[Rig]:
    """With `launch`, the daemon launches that kernelspec (e.g. on its Kernel Gateway)
    instead of attaching to a kernel the bench started."""
    async with AsyncExitStack() as stack:
        kernel = None
        if launch is None:
            kernel = await Kernel().start(ctx.dir(key))
            stack.push_async_callback(kernel.stop)
        if ctx.profile_dir is not None:
            ctx.profile_dir.mkdir(parents=True, exist_ok=True)
            daemon_options.setdefault("profile", ctx.profile_dir / f"{key}.prof")
        daemon = DaemonProcess(ctx.dir(key), **daemon_options)
        stack.push_async_callback(daemon.stop)
        await daemon.start()
        notebook = f"bench-{key}"
        actor = await stack.enter_async_context(daemon.client(notebook, name="bench-actor"))
        watcher = await stack.enter_async_context(daemon.client(notebook, name="bench-watcher"))
        if kernel is None:
            await actor.request("launch_kernel", kernel_name=launch)
            stack.push_async_callback(actor.request, "shutdown_kernel")
        else:
            await actor.request("attach_kernel", connection_file=kernel.connection_file)
        observers = [Observer(actor).start(), Observer(watcher).start()]
        for observer in observers:
            stack.push_async_callback(observer.stop)
        yield Rig(kernel, daemon, *observers)


async def start_listener(kernel: Kernel, comm_id: str, until: int) -> Helper:
    """A plain reader on `kernel` recording each value's send and receive time; subscribed."""
    helper = await Helper.start(
        "-m",
        "benchlib.plain_reader",
        "listen",
        "--connection-file",
        kernel.connection_file,
        "--comm-id",
        comm_id,
        "--until",
        str(until),
    )
    await helper.line(120)
    return helper


async def listener_result(helper: Helper) -> dict[str, Any]:
    """The reader's samples (below) and its CPU seconds from ready to the last value."""
    try:
        return await helper.line(600)
    finally:
        await helper.stop()


async def listener_samples(helper: Helper) -> list[tuple[int, float, float]]:
    """(value, kernel send time, reader receive time) for every update the reader saw."""
    return [tuple(s) for s in (await listener_result(helper))["samples"]]
