"""Blocking work off the daemon's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking work in a daemon thread: a stopping process never waits for it.

    Only for work whose every write is atomic (a temp file renamed, one SQLite commit), since a
    stopping daemon abandons the thread wherever it is.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the daemon stopped without waiting
            loop.call_soon_threadsafe(_settle, fut, *outcome)

    threading.Thread(target=target, daemon=True, name="flageemonitor-io").start()
    return await fut


def _settle(fut: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)  # type: ignore[arg-type]
