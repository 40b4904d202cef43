"""Work of a request stops when nobody waits for it any more.

    async with cancellable(request) as check:
        result = await holder.run(lambda gen: MaskGenerator(seg, progress=check).generate(image))

While the block runs, a watcher asks the server every 0.2 s whether the client has disconnected;
``check`` (a progress callback: ``check(done, total, stage)``) raises :class:`RequestCancelled` in
the worker thread at the next batch once it has, or once the server is shutting down
(``app.state.shutdown``, set by SIGTERM after its grace period). The model is then free for the
next request within one batch, and /metrics shows it idle again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from vfm.errors import VfmError


class RequestCancelled(VfmError):
    """The client went away (or the server is stopping); the request's work was abandoned."""

    http_status = 499  # nginx's "client closed request": nobody reads it


@contextlib.asynccontextmanager
async def cancellable(request):
    gone = threading.Event()
    shutdown: threading.Event = request.app.state.shutdown

    async def watch() -> None:
        while not gone.is_set():
            if await request.is_disconnected():
                gone.set()
                return
            await asyncio.sleep(0.2)

    def check(*_progress) -> None:
        if gone.is_set() or shutdown.is_set():
            request.app.state.metrics.cancelled += 1
            raise RequestCancelled("the client disconnected or the server is shutting down; the work was stopped")

    watcher = asyncio.create_task(watch())
    try:
        yield check
    finally:
        gone.set()
        watcher.cancel()
