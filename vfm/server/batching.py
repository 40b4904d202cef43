"""Dynamic batching: requests for the same key that arrive while the model is busy run as one call.

Clicks on one image share the decoder's per-image work, and a batched decoder call costs much less
per prompt than one call per prompt (on the 2-core bench, 8 one-point prompts cost 28 ms each in
one call against 38 ms alone). So while a model call for a key (an image and output mode) runs, new
requests for that key wait and then go together, up to ``max_batch`` at a time. A request that
arrives when nothing for its key is running goes at once: batching never delays an idle server.

A failure of a batched call is retried request by request, so one bad request cannot fail the
others. Waiting is bounded like the model holders' queue: beyond ``max_waiting`` requests waiting
the answer is 503 at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Hashable, Sequence

from vfm.server.models import BusyError, ModelHolder


class Batcher:
    def __init__(self, holder: ModelHolder, *, max_batch: int = 16):
        self.holder = holder
        self.max_batch = max(1, int(max_batch))
        self._pending: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}
        self._running: set[Hashable] = set()
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0
        self.batched_requests = 0

    @property
    def waiting(self) -> int:
        return sum(len(v) for v in self._pending.values())

    async def run(self, key: Hashable, item: Any, fn: Callable[[Any, Sequence[Any]], list[Any]]) -> Any:
        """``fn(model, items)`` → one result per item, run in the holder's threads with whatever
        else is waiting for ``key``; returns this item's result (or raises its error)."""
        if self.waiting >= self.holder.max_waiting:
            self.holder.rejected += 1
            raise BusyError(f"the {self.holder.role} is busy ({self.waiting} requests waiting); retry in a moment")
        fut = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((item, fut))
        if key not in self._running:
            self._running.add(key)
            task = asyncio.create_task(self._drain(key, fn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drain(self, key: Hashable, fn) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch, self._pending[key] = queue[: self.max_batch], queue[self.max_batch:]
                if not self._pending[key]:
                    del self._pending[key]
                batch = [(item, fut) for item, fut in batch if not fut.done()]  # clients that gave up
                if batch:
                    await self._run_batch(batch, fn)
        finally:
            self._running.discard(key)

    async def _run_batch(self, batch, fn) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self.holder.run(fn, items)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for one in batch:  # isolate the failing request(s)
                await self._run_batch([one], fn)
            return
        self.batches += 1
        self.batched_requests += len(batch)
        for (_, fut), res in zip(batch, results):
            _settle(fut, result=res)


def _settle(fut: asyncio.Future, *, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
