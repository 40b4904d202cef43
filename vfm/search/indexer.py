"""``vfm index``: build or update an index folder from SOURCE, in this process, N processes or on Ray.

One run:

1. scan SOURCE in its deterministic order (vfm.engine.source), 512 names at a time, and compare each
   file with the index: same size and mtime -> kept as is; otherwise it is read and hashed, and
   re-embedded only if its bytes changed;
2. embed the new and changed files in batches (``batch`` images per forward pass), committing each
   image with its vectors in one transaction, in scan order, whatever the number of workers (so the
   entry ids, and so the index, are the same with 1 process, N processes or Ray);
3. when the scan is complete, drop the files it did not see (deleted from SOURCE), in one transaction;
4. bring the FAISS file up to date (vfm.search.vectors.sync).

A run killed at any point leaves committed images committed; the next run skips them and finishes
the rest. At most ``2 * workers`` batches are in flight, so memory does not grow with SOURCE.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterator

from vfm.errors import VfmError
from vfm.search.db import IndexDB

SCAN_CHUNK = 512
BATCH = 16


@dataclass
class IndexReport:
    scanned: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    vectors: int = 0
    kind: str = ""
    nprobe: int = 1
    seconds: float = 0.0
    embedded: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "added": self.added, "changed": self.changed, "unchanged": self.unchanged,
                "removed": self.removed, "errors": [{"file_name": n, "error": e} for n, e in self.errors],
                "vectors": self.vectors, "index": self.kind, "nprobe": self.nprobe, "seconds": round(self.seconds, 3),
                "images_per_s": round(self.embedded / self.seconds, 3) if self.seconds > 0 and self.embedded else None}


def embedder_info(name: str, pooling: str = "cls") -> dict[str, Any]:
    """What identifies an embedder's vectors, read from its config (no weights loaded)."""
    import hashlib

    from vfm.models.clip import model_identity
    from vfm.models.registry import read_hub_json, resolve

    resolved = resolve(name, task="embed")
    config = read_hub_json(resolved.source, "config.json", required=True, name=name) or {}
    if resolved.family == "clip":
        dim = config.get("projection_dim", 512)
    elif resolved.family == "siglip":
        dim = (config.get("text_config") or {}).get("hidden_size", 768)
    else:
        dim = config.get("hidden_size")
    identity = hashlib.sha256(model_identity(resolved).encode()).hexdigest()[:16]
    return {"model": name, "family": resolved.family, "dim": int(dim),
            "pooling": "projection" if resolved.family in ("clip", "siglip") else pooling, "identity": identity,
            "text": resolved.family in ("clip", "siglip")}


def build_index(source: str, db_path: str, config: dict[str, Any], *, workers: int = 1, ray: str | None | bool = False,
                device: str | None = None, batch: int = BATCH, index_kind: str | None = None,
                on_progress: Callable[[int, int], None] = lambda done, total: None) -> IndexReport:
    """Index SOURCE into ``db_path`` (created if new); ``config``: model, pooling, precision, objects, ..."""
    import time

    from vfm.engine.source import open_source
    from vfm.search import vectors

    t0 = time.perf_counter()
    scan = open_source(source)
    info = embedder_info(config["model"], config.get("pooling") or "cls")
    if config.get("pooling") not in (None, "cls") and info["pooling"] == "projection":
        from vfm.errors import PromptError

        raise PromptError(f"--pooling {config['pooling']} is for DINOv2 / DINOv3; '{config['model']}' is a "
                          f"{info['family']} model whose embedding is its projected pooled output")
    db = IndexDB(db_path, create=True)
    report = IndexReport()
    try:
        db.check_embedder(info)
        objects = config.get("objects") or ""
        if objects == "everything":  # the masks depend on the segmenter and its options
            objects = "everything " + json.dumps({k: config.get(k) for k in (
                "segmenter", "points_per_side", "pred_iou_thresh", "stability_score_thresh")}, sort_keys=True)
        stored_objects = db.get("objects")
        if stored_objects is not None and stored_objects != objects:
            raise VfmError(f"--db '{db_path}' was built with --objects {stored_objects or '(none)'}; "
                           f"this run asks for {objects or '(none)'}: use the same option, or a new --db")
        db.set("objects", objects)
        if index_kind:
            vectors.choose_kind(0, index_kind)
            db.set("index_kind", index_kind)
        db.set("source", os.path.abspath(source))
        db.set("precision", config.get("precision") or "fp32")
        generation = db.next_generation()
        work_items = _plan(db, scan, generation, report)
        run = _runner(config, workers, ray, device)
        done = 0
        for records in run(_batches(work_items, batch)):
            for rec in records:
                done += 1
                if rec["status"] == "unchanged":
                    db.touch(rec["file_id"], rec["size"], rec["mtime_ns"], generation)
                    report.unchanged += 1
                    continue
                if rec["status"] == "error":
                    report.errors.append((rec["name"], rec["error"]))
                else:
                    report.embedded += 1
                if rec.get("known"):
                    report.changed += 1
                else:
                    report.added += 1
                db.put(rec, generation)
            on_progress(done, report.scanned)
        report.removed = db.drop_unseen(generation)
        if db.embedder is not None:
            vecs = vectors.sync(db)
            report.vectors, report.kind, report.nprobe = vecs.count, vecs.kind, vecs.nprobe
        previous = [(n, e) for n, e in db.errors() if n not in {x for x, _ in report.errors}]
        report.errors = previous + report.errors
    finally:
        db.close()
    report.seconds = time.perf_counter() - t0
    return report


def _plan(db: IndexDB, scan, generation: int, report: IndexReport) -> Iterator[tuple]:
    """Items to (re)embed, lazily; unchanged files are marked seen as the scan goes."""
    it = iter(scan)
    while True:
        chunk = list(islice(it, SCAN_CHUNK))
        if not chunk:
            break
        report.scanned += len(chunk)
        known = db.lookup([name for name, _ in chunk])
        keep = []
        for name, path in chunk:
            try:
                st = os.stat(path)
            except OSError as exc:
                yield (name, path, None, None, None, None, f"'{name}' could not be read ({exc.strerror or exc})")
                continue
            row = known.get(name)
            if row is not None and row[1] == st.st_size and row[2] == st.st_mtime_ns:
                keep.append(row[0])
                report.unchanged += 1
                continue
            sha = row[3] if row is not None and row[4] == "done" else None
            yield (name, path, st.st_size, st.st_mtime_ns, sha, None if row is None else row[0], None)
        db.mark_seen(keep, generation)
    if scan.skipped:
        pass


def _batches(items: Iterator[tuple], batch: int) -> Iterator[list[tuple]]:
    while True:
        chunk = list(islice(items, batch))
        if not chunk:
            return
        yield chunk


def _work_items(chunk: list[tuple]) -> list[tuple]:
    return [(name, path, size, mtime, sha) for name, path, size, mtime, sha, _fid, err in chunk if err is None]


def _merge(chunk: list[tuple], records: list[dict]) -> list[dict]:
    """Records in chunk order, with stat failures as errors and the known file ids attached."""
    it = iter(records)
    out = []
    for name, path, size, mtime, _sha, file_id, err in chunk:
        if err is not None:
            rec = {"name": name, "path": path, "status": "error", "error": err}
        else:
            rec = next(it)
        rec["file_id"] = file_id
        rec["known"] = file_id is not None
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------- runners
_WORK = None
_WORK_ERROR: str | None = None


def _init(config, device, threads):
    global _WORK, _WORK_ERROR
    try:
        import torch

        torch.set_num_threads(threads)
        from vfm.cli.main import _quiet_libraries
        from vfm.search.worker import EmbedWork

        _quiet_libraries()
        _WORK = EmbedWork(config, device)
    except Exception as exc:  # noqa: BLE001 - reported with the first batch, as one line
        from vfm.engine.runner import load_error

        _WORK_ERROR = load_error(exc)


def _call(items):
    if _WORK is None:
        raise VfmError(_WORK_ERROR or "the worker has no model")
    return _WORK(items)


def _runner(config, workers, ray, device):
    if ray is not False and ray is not None:
        return lambda batches: _run_ray(batches, config, ray or None, workers, device)
    if workers > 1:
        return lambda batches: _run_pool(batches, config, workers, device)

    def inline(batches):
        from vfm.search.worker import EmbedWork

        work = None
        for chunk in batches:
            items = _work_items(chunk)
            if items and work is None:
                work = EmbedWork(config, device)
            yield _merge(chunk, work(items) if items else [])
    return inline


def _run_pool(batches, config, workers, device):
    import multiprocessing as mp

    from vfm.engine.runner import worker_threads

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(config, device, worker_threads(workers))) as pool:
        inflight: deque = deque()
        exhausted = False
        while True:
            while not exhausted and len(inflight) < 2 * workers:
                chunk = next(batches, None)
                if chunk is None:
                    exhausted = True
                    break
                inflight.append((chunk, pool.apply_async(_call, (_work_items(chunk),))))
            if not inflight:
                return
            chunk, result = inflight.popleft()
            yield _merge(chunk, result.get())


class _RayEmbedder:
    """Ray Data callable class: the model once per actor; a row is one pickled batch of items."""

    def __init__(self, config, device, threads):
        _init(config, device, threads)

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        import pickle

        out = []
        for payload in rows["items"]:
            items = pickle.loads(payload)
            try:
                out.append(pickle.dumps(("ok", _call(items) if items else [])))
            except VfmError as exc:
                out.append(pickle.dumps(("fatal", str(exc))))
        return {"records": out}


def _run_ray(batches, config, address, workers, device):
    import pickle

    from vfm.engine.ray_runner import init_ray

    ray = init_ray(address, num_cpus=workers if (workers and workers > 1 and not address) else None)
    import ray.data  # noqa: F401

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.verbose_progress = False
    ctx.execution_options.preserve_order = True
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = max(1, workers if workers and workers > 1 else cpus)
    threads = max(1, cpus // actors) if not address else 1
    window = max(64, 8 * actors)
    while True:
        chunks = list(islice(batches, window))
        if not chunks:
            return
        ds = ray.data.from_items([{"items": pickle.dumps(_work_items(c))} for c in chunks],
                                 override_num_blocks=min(len(chunks), actors * 2))
        ds = ds.map_batches(_RayEmbedder, fn_constructor_kwargs={"config": config, "device": device, "threads": threads},
                            batch_size=1, concurrency=actors, num_cpus=1, batch_format="numpy")
        results = [pickle.loads(r["records"]) for r in ds.iter_rows()]
        for chunk, (status, records) in zip(chunks, results):
            if status == "fatal":
                raise VfmError(records)
            yield _merge(chunk, records)


def scan_summary(report: IndexReport) -> str:
    return json.dumps(report.to_json())
