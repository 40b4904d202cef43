"""Models for the tools: which ones a server offers (:data:`ROLES`), loaded on first use and kept.

Each loaded model has its own lock and its own worker thread: one call at a time per model, and
calls to different models run at once. The same thread keeps torch's CPU thread team warm from one
call to the next (see vfm/server/models.py). A call that needs two models (ground: detector +
segmenter) holds both locks, taken in one fixed order, so two such calls cannot deadlock.

Every load writes one line on stderr, ``vfm mcp: loaded <role> '<name>' in S s (N model(s) loaded)``:
the count only grows when a model is loaded for the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from vfm.errors import ModelError
from vfm.server.config import (DEFAULT_CAPTIONER, DEFAULT_CLASSIFIER, DEFAULT_DETECTOR, DEFAULT_SEGMENTER, DEFAULT_TRACKER,
                               DEFAULT_VLM)


@dataclass(frozen=True)
class Role:
    """A kind of model the tools use, chosen with ``vfm mcp --<name> M`` (repeatable: the first is the
    default, the others are offered to the agent as the tools' ``model`` choices)."""

    name: str
    default: str
    help: str
    load: Callable[[str, "LoadOptions"], Any]


@dataclass(frozen=True)
class LoadOptions:
    device: str | None = None
    precision: str = "auto"
    backend: str = "torch"  # the segmenter's image encoder engine; int8 precision applies to it only

    @property
    def other_precision(self) -> str:
        """The precision of every model but the segmenter (an int8 export exists for SAM's encoder only)."""
        return "auto" if self.precision == "int8" else self.precision


def _segmenter(name: str, o: LoadOptions):
    from vfm.tasks.segment import Segmenter

    return Segmenter.load(name, device=o.device, precision=o.precision, backend=o.backend)


def _detector(name: str, o: LoadOptions):
    from vfm.tasks.detect import Detector

    return Detector.load(name, device=o.device, precision=o.other_precision)


def _classifier(name: str, o: LoadOptions):
    from vfm.models.registry import resolve

    precision = "fp32" if o.other_precision == "auto" else o.other_precision  # scores equal transformers' (vfm classify)
    if resolve(name, task="classify").family == "image-classifier":
        from vfm.tasks.closed_classify import ImageClassifier

        return ImageClassifier.load(name, device=o.device, precision=precision)
    from vfm.tasks.classify import Classifier

    return Classifier.load(name, device=o.device, precision=precision)


def _tracker(name: str, o: LoadOptions):
    from vfm.video.tracker import VideoTracker

    return VideoTracker.load(name, device=o.device, precision=o.other_precision)


def _concept(name: str, o: LoadOptions):
    from vfm.tasks.concept import ConceptSegmenter  # SAM 3 for ground: text -> masks without a detector

    return ConceptSegmenter.load(name, device=o.device, precision=o.other_precision)


def _vision_language(task: str):
    def load(name: str, o: LoadOptions):
        from vfm.tasks.vlm import VisionLanguage

        return VisionLanguage.load(name, task=task, device=o.device, precision=o.other_precision)  # auto: fp32 on CPU

    return load


def _index(path: str, o: LoadOptions):
    from vfm.search.query import Searcher

    return Searcher(path, device=o.device)


#: The models a server offers, by role; a new role (a new kind of model) is one more entry here.
ROLES: dict[str, Role] = {r.name: r for r in (
    Role("segmenter", DEFAULT_SEGMENTER, "SAM-family model for segment, everything and ground", _segmenter),
    Role("detector", DEFAULT_DETECTOR, "open-vocabulary detector for detect and ground", _detector),
    Role("classifier", DEFAULT_CLASSIFIER, "CLIP / SigLIP model for classify and tag", _classifier),
    Role("tracker", DEFAULT_TRACKER, "SAM 2.1 / EdgeTAM video model for track", _tracker),
    Role("captioner", DEFAULT_CAPTIONER, "captioning model for caption and read; a Florence-2 one also grounds "
                                         "answers (ground=true)", _vision_language("caption")),
    Role("vlm", DEFAULT_VLM, "chat VLM (or BLIP VQA) for ask", _vision_language("ask")),
)}

#: Other loaders: the search index (``--db``), and a SAM 3 segmenter as ground loads it (text -> masks).
EXTRA_LOADERS: dict[str, Callable[[str, LoadOptions], Any]] = {"index": _index, "concept": _concept}


@dataclass
class _Entry:
    role: str
    name: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    executor: ThreadPoolExecutor | None = None
    model: Any = None

    @property
    def key(self) -> tuple[str, str]:
        return self.role, self.name


class ModelPool:
    """Models by (role, name), loaded on first use; :meth:`run` calls a function with them."""

    def __init__(self, options: LoadOptions, log: TextIO | None = None):
        self.options = options
        self.log = log or sys.stderr
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._memo: dict[tuple, Any] = {}

    @property
    def loaded(self) -> list[tuple[str, str]]:
        """(role, name) of every model loaded so far, in load order."""
        return [e.key for e in self._entries.values() if e.model is not None]

    def _entry(self, role: str, name: str) -> _Entry:
        with self._lock:
            entry = self._entries.get((role, name))
            if entry is None:
                executor = ThreadPoolExecutor(1, thread_name_prefix=f"vfm-mcp-{role}")
                entry = self._entries[(role, name)] = _Entry(role, name, executor=executor)
            return entry

    def _load(self, entry: _Entry) -> Any:
        """The entry's model, loading it now (the caller holds the entry's lock)."""
        if entry.model is None:
            loader = ROLES[entry.role].load if entry.role in ROLES else EXTRA_LOADERS[entry.role]
            started = time.perf_counter()
            try:
                entry.model = loader(entry.name, self.options)
            except ModelError as exc:
                raise ModelError(f"the {entry.role} '{entry.name}' cannot be loaded: {exc}", model_name=entry.name) from exc
            self.log.write(f"vfm mcp: loaded {entry.role} '{entry.name}' in {time.perf_counter() - started:.1f} s "
                           f"({len(self.loaded)} model(s) loaded)\n")
            self.log.flush()
        return entry.model

    async def run(self, keys: list[tuple[str, str]], fn: Callable[..., Any]) -> Any:
        """``fn(*models)`` for the (role, name) ``keys``, on the first model's thread, holding every
        model's lock; models not loaded yet are loaded first (under the same locks)."""
        entries = [self._entry(role, name) for role, name in keys]

        def call():
            with contextlib.ExitStack() as stack:
                for entry in sorted({e.key: e for e in entries}.values(), key=lambda e: e.key):
                    stack.enter_context(entry.lock)
                return fn(*[self._load(entry) for entry in entries])

        return await asyncio.wrap_future(entries[0].executor.submit(call))

    def memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        """A value built once from a model (e.g. a Tagger over a classifier); call it under that model's lock."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        value = make()
        with self._lock:
            return self._memo.setdefault(key, value)

    def close(self) -> None:
        for entry in self._entries.values():
            if entry.executor is not None:
                entry.executor.shutdown(wait=False, cancel_futures=True)
