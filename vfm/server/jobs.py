"""Background jobs (video tracking): queued, run one at a time, polled, cancelled.

``GET /v1/jobs/{id}`` shows a job's status (queued, running, done, failed, cancelled), its progress
(frames done of the total) and, once done, where its results are. ``DELETE /v1/jobs/{id}`` cancels
it: a running job stops at its next frame and leaves nothing half-written. Finished jobs beyond
``max_jobs`` are forgotten oldest first, their files removed.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vfm.errors import VfmError

FINISHED = ("done", "failed", "cancelled")


class UnknownJobError(VfmError):
    http_status = 404


class JobCancelled(Exception):
    """Raised inside a job's work when it was cancelled."""


@dataclass
class Job:
    job_id: str
    kind: str
    folder: Path
    params: dict[str, Any]
    status: str = "queued"
    done: int = 0
    total: int | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    results: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int | None = None) -> None:
        """Called by the work after each step; raises :class:`JobCancelled` once the job is cancelled."""
        self.done = done
        if total is not None:
            self.total = total
        if self.cancel_event.is_set():
            raise JobCancelled()

    def to_json(self) -> dict[str, Any]:
        fraction = None
        if self.total:
            fraction = round(min(1.0, self.done / self.total), 4)
        elif self.status == "done":
            fraction = 1.0
        elapsed = (self.finished or time.time()) - self.started if self.started else 0.0
        return {"job_id": self.job_id, "kind": self.kind, "status": self.status, **self.params,
                "progress": {"done": self.done, "total": self.total, "fraction": fraction,
                             "seconds": round(elapsed, 3)},
                "error": self.error, "warnings": self.warnings, "results": self.results}


class JobManager:
    def __init__(self, root: Path, max_jobs: int = 32):
        self.root = Path(root)
        self.max_jobs = max(1, int(max_jobs))
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vfm-jobs")

    def submit(self, kind: str, params: dict[str, Any], work: Callable[[Job], dict[str, Any]]) -> Job:
        job_id = secrets.token_hex(8)
        job = Job(job_id, kind, self.root / job_id, params)
        with self._lock:
            self._jobs[job_id] = job
            self._forget_old()
        self._executor.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        if job.cancel_event.is_set():
            job.status, job.finished = "cancelled", time.time()
            return
        job.status, job.started = "running", time.time()
        try:
            job.folder.mkdir(parents=True, exist_ok=True)
            job.results = work(job)
            job.status = "done"
        except JobCancelled:
            job.status = "cancelled"
            shutil.rmtree(job.folder, ignore_errors=True)
        except VfmError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the job, never kills the worker
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}: {msg}"
        finally:
            job.finished = time.time()

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(f"no job with id '{job_id}' (unknown, or forgotten after {self.max_jobs} newer jobs)")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status not in FINISHED:
            job.cancel_event.set()
            if job.status == "queued":
                job.status, job.finished = "cancelled", time.time()
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        while len(self._jobs) > self.max_jobs and finished:
            old = finished.pop(0)
            self._jobs.pop(old.job_id, None)
            shutil.rmtree(old.folder, ignore_errors=True)

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel_event.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
