"""Run a labeling task on Ray Data: the same pipeline as `runner`, spread over a Ray cluster.

``ray.init()`` starts a local cluster when no address is given (or reuses one already initialized
in this process); ``ray.init(address=...)`` joins an existing cluster (``auto``, ``ray://host:10001``,
``host:6379``). Every node must have vfm installed and see the images at the same paths (shared
storage); only the driver (this process) reads and writes the state store.

Pending images are sent in windows (``window`` rows each) through
``Dataset.map_batches(_RayLabeler, concurrency=N)``: each actor is a callable class that loads the
models once and labels its batches; results stream back to the driver with ``iter_batches`` and are
committed to the store as they arrive. Memory on the driver is bounded by the window, never by the
number of images.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Callable

from vfm.engine.runner import _commit, _Guard
from vfm.engine.state import Store
from vfm.errors import VfmError, require

COLUMNS = ("id", "status", "width", "height", "result", "error", "internal", "fatal")


class _RayLabeler:
    """Ray Data callable class: loads the models once per actor, labels a batch of (id, path)."""

    def __init__(self, config: dict[str, Any], device: str | None, threads: int):
        from vfm.engine.runner import load_error

        self.task, self.error = None, None
        try:  # a load failure is reported with the first batch, as one line, not as a dead actor
            import torch

            from vfm.cli.main import _quiet_libraries
            from vfm.engine.tasks import LabelTask

            torch.set_num_threads(max(1, threads))
            _quiet_libraries()
            self.task = LabelTask.from_config(config, device=device)
        except Exception as exc:  # noqa: BLE001
            self.error = load_error(exc)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in COLUMNS}
        for image_id, path in zip(batch["id"], batch["path"]):
            if self.task is None:
                rec = {"id": int(image_id), "status": "error", "fatal": self.error}
            else:
                rec = self.task(int(image_id), str(path))
            out["id"].append(int(rec["id"]))
            out["status"].append(rec["status"])
            out["width"].append(int(rec.get("width") or -1))
            out["height"].append(int(rec.get("height") or -1))
            out["result"].append(rec.get("result") or "")
            out["error"].append(rec.get("error") or "")
            out["internal"].append(bool(rec.get("internal")))
            out["fatal"].append(rec.get("fatal") or "")
        return out


def init_ray(address: str | None, num_cpus: int | None = None):
    ray = require("ray", "ray")
    if not ray.is_initialized():
        if address:
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise VfmError(f"could not join the Ray cluster at '{address}' ({reason}); start it with "
                               "'ray start --head' or give its address (auto, host:6379, ray://host:10001)") from None
        else:
            ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False)
    return ray


def run_ray(store: Store, config: dict[str, Any], *, address: str | None = None, workers: int | None = None,
            device: str | None = None, threads: int | None = None, batch_size: int = 4, window: int | None = None,
            on_done: Callable[[int], None] = lambda n: None) -> int:
    """Label every pending image on Ray; returns how many were processed in this call."""
    ray = init_ray(address, num_cpus=workers if (workers and workers > 1 and not address) else None)
    import ray.data  # noqa: F401

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.verbose_progress = False
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, workers if workers and workers > 1 else cpus)
    threads = threads or (max(1, cpus // actors) if not address else 1)
    window = window or max(10000, 64 * actors)
    guard = _Guard()
    n = 0
    pending = store.pending()
    while True:
        rows = list(islice(pending, window))
        if not rows:
            break
        ds = ray.data.from_items([{"id": i, "path": p} for i, p in rows], override_num_blocks=min(len(rows), actors * 4))
        ds = ds.map_batches(
            _RayLabeler, fn_constructor_kwargs={"config": config, "device": device, "threads": threads},
            batch_size=batch_size, concurrency=actors, num_cpus=1, batch_format="numpy",
        )
        for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
            for j in range(len(batch["id"])):
                rec = {
                    "id": int(batch["id"][j]), "status": str(batch["status"][j]),
                    "width": None if int(batch["width"][j]) < 0 else int(batch["width"][j]),
                    "height": None if int(batch["height"][j]) < 0 else int(batch["height"][j]),
                    "result": str(batch["result"][j]) or None, "error": str(batch["error"][j]) or None,
                    "internal": bool(batch["internal"][j]), "fatal": str(batch["fatal"][j]),
                }
                _commit(store, rec, guard)
                n += 1
                on_done(1)
        del rows
    return n
