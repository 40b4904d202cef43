"""Run a labeling task over the pending images of a store: in this process or in N worker processes.

Results are committed to the store one image per transaction as they arrive, so a kill loses at
most the images in flight. Workers (multiprocessing, spawn context) load the models once each; the
main process is the only writer of the store. At most ``2 * workers`` images are in flight, so
memory does not grow with the number of images.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Callable

from vfm.engine.state import Store
from vfm.engine.tasks import LabelTask
from vfm.errors import VfmError

#: A run whose first images all fail with internal (non-image) errors stops: the setup is broken.
FATAL_AFTER = 5


class _Guard:
    def __init__(self):
        self.ok = 0
        self.internal = 0

    def check(self, record: dict[str, Any]) -> None:
        if record["status"] == "done":
            self.ok += 1
        elif record.get("internal"):
            self.internal += 1
            if self.ok == 0 and self.internal >= FATAL_AFTER:
                raise VfmError(f"the first {self.internal} images all failed inside the model ({record['error']}); "
                               "check the models and options (VFM_DEBUG=1 for details)")


def run_local(store: Store, config: dict[str, Any], *, workers: int = 1, device: str | None = None,
              threads: int | None = None, on_done: Callable[[int], None] = lambda n: None) -> int:
    """Label every pending image; returns how many were processed in this call."""
    if workers <= 1:
        if threads:
            import torch

            torch.set_num_threads(threads)
        return _run_inline(store, config, device, on_done)
    return _run_pool(store, config, workers, device, threads or worker_threads(workers), on_done)


def _commit(store: Store, record: dict[str, Any], guard: _Guard) -> None:
    if record.get("fatal"):
        raise VfmError(record["fatal"])
    guard.check(record)
    record.pop("internal", None)
    store.commit([record])


def _run_inline(store, config, device, on_done) -> int:
    task = LabelTask.from_config(config, device=device)
    guard = _Guard()
    n = 0
    for image_id, path in store.pending():
        _commit(store, task(image_id, path), guard)
        n += 1
        on_done(1)
    return n


_WORKER_TASK: LabelTask | None = None
_WORKER_ERROR: str | None = None


def load_error(exc: BaseException) -> str:
    """One sentence for a model that failed to load in a worker (sent back instead of crashing it)."""
    if isinstance(exc, VfmError):
        return str(exc)
    msg = (str(exc).strip().splitlines() or [""])[0]
    return f"loading the models failed: {type(exc).__name__}: {msg}"


def _init_worker(config: dict[str, Any], device: str | None, threads: int) -> None:
    # A failing initializer would make multiprocessing respawn the worker forever: keep the error instead.
    global _WORKER_TASK, _WORKER_ERROR
    try:
        import torch

        torch.set_num_threads(threads)
        from vfm.cli.main import _quiet_libraries

        _quiet_libraries()
        _WORKER_TASK = LabelTask.from_config(config, device=device)
    except Exception as exc:  # noqa: BLE001
        _WORKER_ERROR = load_error(exc)


def _work(image_id: int, path: str) -> dict[str, Any]:
    if _WORKER_TASK is None:
        return {"id": image_id, "fatal": _WORKER_ERROR or "the worker has no models"}
    return _WORKER_TASK(image_id, path)


def worker_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _run_pool(store, config, workers, device, threads, on_done) -> int:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    guard = _Guard()
    n = 0
    with ctx.Pool(workers, initializer=_init_worker, initargs=(config, device, threads)) as pool:
        inflight: deque = deque()
        pending = store.pending()
        exhausted = False
        while True:
            while not exhausted and len(inflight) < 2 * workers:
                try:
                    image_id, path = next(pending)
                except StopIteration:
                    exhausted = True
                    break
                inflight.append(pool.apply_async(_work, (image_id, path)))
            if not inflight:
                break
            record = inflight.popleft().get()
            _commit(store, record, guard)
            n += 1
            on_done(1)
    return n
