"""TaskOwner: a group run by its parent, fed from anywhere, ended by `close` (tasks.py)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from runtimed.daemon.tasks import TaskOwner


async def test_start_returns_once_the_owner_is_ready_and_close_waits_for_its_work() -> None:
    owner = TaskOwner("test")
    done: list[str] = []

    async def work() -> None:
        await asyncio.sleep(0.01)
        done.append("work")

    async with anyio.create_task_group() as parent:
        await parent.start(owner.run)
        assert owner.running
        owner.start_soon(work)
        await owner.close(grace=None)  # as long as it takes
        assert done == ["work"]
        assert not owner.running


async def test_close_cancels_what_outlives_the_grace() -> None:
    owner = TaskOwner("test")
    ended = anyio.Event()

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.set()

    async with anyio.create_task_group() as parent:
        await parent.start(owner.run)
        owner.start_soon(forever)
        await owner.close(grace=0.05)
        assert ended.is_set()


async def test_a_failing_task_is_logged_and_its_siblings_go_on() -> None:
    owner = TaskOwner("test")
    sibling_done = anyio.Event()

    async def broken() -> None:
        raise ValueError("a bug")

    async def sibling() -> None:
        await asyncio.sleep(0.01)
        sibling_done.set()

    async with anyio.create_task_group() as parent:
        await parent.start(owner.run)
        owner.start_soon(broken)
        owner.start_soon(sibling)
        await sibling_done.wait()
        assert owner.running  # the failure stayed in its task
        await owner.close()


async def test_a_closed_owner_takes_no_more_work() -> None:
    owner = TaskOwner("test")

    async def work() -> None: ...

    with pytest.raises(RuntimeError, match="runs no more tasks"):
        owner.start_soon(work)  # not running yet
    async with anyio.create_task_group() as parent:
        await parent.start(owner.run)
        await owner.close()
        with pytest.raises(RuntimeError, match="runs no more tasks"):
            owner.start_soon(work)
        with pytest.raises(RuntimeError, match="closed"):
            await owner.start(work)
