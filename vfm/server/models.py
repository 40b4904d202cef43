"""Lazily loaded models, one holder per role, with bounded concurrency.

Each holder loads its model on first use (once, under a lock). Model work runs on the holder's
own ``concurrency`` worker threads; at most ``concurrency`` calls run at once per model and at most
``max_waiting`` more may wait — beyond that the request is answered 503 at once instead of joining
an unbounded queue.

Why a holder's own threads, not the shared threadpool: torch's CPU kernels run on an OpenMP team
that belongs to the calling thread. Calls that hop between pool threads wake cold teams, and two
teams on two cores stall each other at every barrier; the same one or two threads keep one warm
team per call slot (on the 2-core bench, 1 thread: click p50 45 ms and 22 clicks/s at 8 clients,
against 55 ms and 12.6/s with 2 calls at once in the shared pool; bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from vfm.errors import PromptError, VfmError
from vfm.runtime import resolve_device


class BusyError(VfmError):
    """Too many requests are waiting for a model."""

    http_status = 503


class ModelUnavailableError(VfmError):
    """The server's configured model cannot be loaded (a server-side problem, not the request's)."""

    http_status = 503


class ModelHolder:
    def __init__(self, role: str, name: str | None, loader: Callable[[], Any], *, concurrency: int, max_waiting: int):
        self.role = role
        self.name = name
        self._loader = loader
        self._model: Any = None
        self._lock = threading.Lock()
        self._concurrency = max(1, int(concurrency))
        self._sem: asyncio.Semaphore | None = None
        self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix=f"vfm-{role.replace(' ', '-')}")
        self.max_waiting = int(max_waiting)
        self.waiting = 0
        self.running = 0
        self.rejected = 0
        self.load_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self) -> Any:
        """The model, loading it now if needed (blocking; call from a worker thread)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._model = self._loader()
                        self.load_error = None
                    except VfmError as exc:
                        self.load_error = str(exc)
                        from vfm.errors import ModelError

                        if isinstance(exc, ModelError):
                            raise ModelUnavailableError(f"the server's {self.role} cannot be loaded: {exc}") from exc
                        raise
        return self._model

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(model, *args, **kwargs)`` in the threadpool under this model's concurrency bound."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._concurrency)
        if self._sem.locked() and self.waiting >= self.max_waiting:
            self.rejected += 1
            raise BusyError(f"the {self.role} is busy ({self.waiting} requests waiting); retry in a moment")
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, lambda: fn(self.get(), *args, **kwargs))
        finally:
            self.running -= 1
            self._sem.release()

    def status(self) -> dict[str, Any]:
        return {"model": self.name, "loaded": self.loaded, "running": self.running, "waiting": self.waiting,
                "rejected": self.rejected, **({"error": self.load_error} if self.load_error else {})}


class Models:
    """The holders of one app: segmenter, detector, grounder (detector + segmenter), classifier, tagger."""

    def __init__(self, config):
        c = config
        kw = dict(concurrency=c.concurrency or default_concurrency(c.device), max_waiting=c.max_waiting)
        self.config = config

        def load_segmenter():
            from vfm.tasks.segment import Segmenter

            return Segmenter.load(c.segmenter, device=c.device, precision=c.precision, cache_bytes=c.embedding_cache_bytes,
                                  backend=c.backend)

        def load_detector():
            from vfm.tasks.detect import Detector

            return Detector.load(c.detector, device=c.device, precision=c.precision)

        def load_classifier():
            from vfm.tasks.classify import Classifier

            return Classifier.load(c.classifier, device=c.device)

        def load_grounder():
            if c.text_segmenter:
                from vfm.tasks.concept import ConceptSegmenter

                return ConceptSegmenter.load(c.text_segmenter, device=c.device, precision=c.precision)
            from vfm.tasks.ground import Grounder

            return Grounder(self.detector.get(), self.segmenter.get())

        def load_tagger():
            from vfm.tasks.tag import Tagger

            return Tagger(self.classifier.get())

        def load_everything():
            try:
                from vfm.tasks.everything import MaskGenerator
            except ImportError as exc:
                from vfm.errors import DependencyError

                raise DependencyError("'segment everything' is not available in this vfm build") from exc
            return MaskGenerator(self.segmenter.get())

        def load_searcher():
            from vfm.search.query import Searcher
            from vfm.server.routes_search import NoIndexError

            if not c.db:
                raise NoIndexError("this server has no index; start it with vfm serve --db PATH (made by vfm index)")
            return Searcher(c.db, device=c.device)

        def load_embedder():
            if c.db:
                return self.searcher.get().embedder
            from vfm.tasks.embed import Embedder

            return Embedder.load(c.classifier, device=c.device)

        def load_tracker():
            from vfm.video.tracker import VideoTracker

            return VideoTracker.load(c.tracker, device=c.device, precision=c.precision)

        def load_concept_tracker():
            from vfm.models.registry import is_concept_model
            from vfm.video.concept_tracker import ConceptVideoTracker

            if not is_concept_model(c.tracker):
                raise PromptError(f"'text' tracking needs SAM 3; this server tracks with '{c.tracker}' "
                                  "(start it with vfm serve --tracker sam3), or send 'classes' instead")
            return ConceptVideoTracker.load(c.tracker, device=c.device, precision=c.precision)

        vlms: dict[tuple[str, str], Any] = {}

        def load_vlm(name: str, task: str):
            from vfm.tasks.vlm import VisionLanguage

            if (name, task) not in vlms:
                vlms[(name, task)] = VisionLanguage.load(name, task=task, device=c.device, precision=c.precision)
            return vlms[(name, task)]

        # one generation at a time per model (a second would only halve the speed of both)
        self.captioner = ModelHolder("captioner", c.captioner, lambda: load_vlm(c.captioner, "caption"), concurrency=1,
                                     max_waiting=c.max_waiting)
        self.vlm = ModelHolder("vlm", c.vlm, lambda: load_vlm(c.vlm, "ask"), concurrency=1, max_waiting=c.max_waiting)
        self.tracker = ModelHolder("tracker", c.tracker, load_tracker, concurrency=1, max_waiting=c.max_waiting)
        self.concept_tracker = ModelHolder("text tracker", c.tracker, load_concept_tracker, concurrency=1,
                                           max_waiting=c.max_waiting)
        self.searcher = ModelHolder("index", c.db, load_searcher, **kw)
        self.embedder = ModelHolder("embedder", c.db or c.classifier, load_embedder, **kw)
        self.segmenter = ModelHolder("segmenter", c.segmenter, load_segmenter, **kw)
        self.detector = ModelHolder("detector", c.detector, load_detector, **kw)
        self.classifier = ModelHolder("classifier", c.classifier, load_classifier, **kw)
        # composite holders: their own bound (they call into the models above directly)
        self.grounder = ModelHolder("grounder", c.text_segmenter or f"{c.detector} + {c.segmenter}", load_grounder, **kw)
        self.tagger = ModelHolder("tagger", c.classifier, load_tagger, **kw)
        self.everything = ModelHolder("mask generator", c.segmenter, load_everything, concurrency=1,
                                      max_waiting=c.max_waiting)

    def base(self) -> list[ModelHolder]:
        return [self.segmenter, self.detector, self.classifier]

    def preload(self) -> None:
        for h in self.base():
            h.get()


def default_concurrency(device: str | None) -> int:
    """Model calls at once per model when not configured: 1 on CPU (torch already spreads one call
    over every core; a second call only contends with it), 2 on a GPU (one call's CPU pre- and
    post-processing overlaps the other's GPU work)."""
    try:
        return 1 if resolve_device(device).type == "cpu" else 2
    except Exception:  # an unusable device fails with its own message when a model loads
        return 1
