"""Label Studio's ML backend protocol over the server's models: setup, predict (interactive or not).

``predict`` with an interactive ``params.context`` (smart-tool regions) segments the one task's image
with the segmenter and answers one region in the chosen label: brush RLE for BrushLabels, the
largest outer contour for PolygonLabels. Without context it pre-annotates every task with the
config's label names as classes: text → masks (detector boxes → segmenter) for a mask tag, detector
boxes for RectangleLabels. One click alone is ambiguous, so as SAM's authors advise it is decoded
with three candidate masks and the best-scoring one is kept; every other prompt gives one mask.

A task whose image cannot be read fails alone: a single task answers 4xx with the reason; in a
batch it gets an empty prediction carrying ``error`` (and the reason is logged) so the others land.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vfm.errors import PromptError, VfmError
from vfm.labelstudio.config import MASK_KINDS, LabelConfig
from vfm.labelstudio.fetch import Host, ImageFetcher

log = logging.getLogger("vfm.labelstudio")

THRESHOLDS = ("box_threshold", "text_threshold")


@dataclass
class ProjectState:
    host: Host = field(default_factory=Host)
    params: dict[str, float] = field(default_factory=dict)


def _short(name: str | None) -> str:
    return Path(name).name if name and ("/" in name and Path(name).exists()) else str(name)


def _region_id() -> str:
    return secrets.token_hex(5)


def parse_params(extra: Any) -> dict[str, float]:
    """The connection's extra params (``{"box_threshold": 0.3, "text_threshold": 0.25}``)."""
    import json

    if extra in (None, "", {}):
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise PromptError("extra_params must be a JSON object like {\"box_threshold\": 0.3}") from None
    if not isinstance(extra, dict):
        raise PromptError("extra_params must be a JSON object like {\"box_threshold\": 0.3}")
    unknown = sorted(set(extra) - set(THRESHOLDS))
    if unknown:
        raise PromptError(f"unknown extra_params {unknown}; vfm reads {list(THRESHOLDS)}")
    out = {}
    for k, v in extra.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise PromptError(f"extra_params {k} must be a number in [0, 1], got {v!r}")
        out[k] = float(v)
    return out


class LabelStudioBackend:
    """Per-app state: the host flags, what each project's /setup sent, and fetched images by URL."""

    def __init__(self, app_state, *, host: Host, root: str | None):
        self.state = app_state
        cfg = app_state.config
        self.default_host = host
        self.fetcher = ImageFetcher(root=root, max_bytes=cfg.max_upload_bytes, max_pixels=cfg.max_pixels)
        self.projects: dict[str, ProjectState] = {}
        self._refs: OrderedDict[tuple[str | None, str], str] = OrderedDict()  # (host, url) -> image id
        self._lock = threading.Lock()

    @property
    def model_version(self) -> str:
        from vfm import __version__

        cfg = self.state.config
        return f"vfm-{__version__} {_short(cfg.segmenter)}+{_short(cfg.detector)}"

    # ------------------------------------------------------------------ setup
    def setup(self, body: dict) -> dict:
        LabelConfig.parse(body.get("schema"))
        project = str(body.get("project") or "")
        hostname, token = body.get("hostname"), body.get("access_token")
        self.projects[project] = ProjectState(
            Host(hostname if isinstance(hostname, str) and hostname else None,
                 token if isinstance(token, str) and token else None),
            parse_params(body.get("extra_params")))
        return {"model_version": self.model_version}

    def host_for(self, project: str) -> Host:
        """The flags' host and token first, else what this project's /setup sent."""
        sent = self.projects.get(project, ProjectState()).host
        d = self.default_host
        if d.url:
            return Host(d.url, d.token or (sent.token if sent.url and Host(sent.url).origin == d.origin else None))
        return Host(sent.url, d.token or sent.token)

    # ------------------------------------------------------------------ images
    def image(self, ref: Any, host: Host):
        """The task image as a stored upload (fetched once per URL while it stays in the image store)."""
        store = self.state.store
        key = (host.url, ref if isinstance(ref, str) else repr(ref))
        with self._lock:
            image_id = self._refs.get(key)
        if image_id is not None:
            try:
                return store.get(image_id)
            except VfmError:
                pass
        stored = store.add(self.fetcher.load(ref, host), ref if isinstance(ref, str) else None)
        with self._lock:
            self._refs[key] = stored.image_id
            self._refs.move_to_end(key)
            while len(self._refs) > 4096:
                self._refs.popitem(last=False)
        return stored

    # ------------------------------------------------------------------ predict
    async def predict(self, body: dict) -> dict:
        from starlette.concurrency import run_in_threadpool

        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
            raise PromptError("'tasks' must be a non-empty list of Label Studio tasks")
        config = LabelConfig.parse(body.get("label_config"))
        project = str(body.get("project") or "")
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        context = params.get("context")
        host = self.host_for(project)
        if isinstance(context, dict) and context.get("result"):
            if len(tasks) != 1:
                raise PromptError("an interactive request (with context) must hold exactly one task")
            task = tasks[0]
            from vfm.labelstudio.interactive import parse_interaction

            inter = parse_interaction(config, context["result"])  # checked before any image is fetched
            stored = await run_in_threadpool(self.image, _task_ref(task, config.image_key(inter.to_name)), host)
            prediction = await self._interactive(stored, inter)
            return {"results": [prediction], "model_version": self.model_version}
        out = config.preannotation_output()
        thresholds = self.projects.get(project, ProjectState()).params
        results = []
        for task in tasks:
            try:
                stored = await run_in_threadpool(self.image, _task_ref(task, config.image_key(out.to_name)), host)
                results.append(await self._preannotate(stored, out, thresholds))
            except VfmError as exc:
                if len(tasks) == 1:
                    raise
                message = f"task {task.get('id')}: {exc}"
                log.warning("vfm Label Studio backend: %s", message)
                results.append({"result": [], "score": 0.0, "model_version": self.model_version, "error": message})
        return {"results": results, "model_version": self.model_version}

    async def _interactive(self, stored, inter) -> dict:
        prompt = inter.prompt(stored.image.width, stored.image.height)
        one_click = inter.box is None and inter.points is not None and len(inter.points) == 1
        image_id = stored.image_id

        def work(seg):
            emb = seg.cache.get(image_id) if image_id in seg.cache else None
            if emb is None:
                emb = seg.embed(stored.image)[1]
            res = seg.predict_batch([prompt], multimask=one_click, image=emb, return_logits=False)
            best = int(np.argmax(res.scores))
            return res.mask(best), float(res.scores[best])

        mask, score = await self.state.models.segmenter.run(work)
        region = _mask_region(inter.output, mask, inter.label, score)
        return {"result": [region] if region else [], "score": round(score, 6), "model_version": self.model_version}

    async def _preannotate(self, stored, out, thresholds: dict) -> dict:
        from vfm.formats.labelstudio import rectangle_region
        from vfm.tasks.ontology import Ontology

        entries = out.ontology_entries()
        Ontology.parse(entries)  # a config whose labels contradict each other fails here, with the reason
        bt, tt = thresholds.get("box_threshold"), thresholds.get("text_threshold")
        image = stored.image
        models = self.state.models
        if out.kind in MASK_KINDS:
            res = await models.grounder.run(lambda g: g.ground(image, entries, box_threshold=bt, text_threshold=tt))
        else:
            res = await models.detector.run(lambda d: d.detect(image.pixels, entries, box_threshold=bt, text_threshold=tt))
        regions = []
        for i in range(len(res)):
            label, score = res.class_names[i], round(float(res.scores[i]), 6)
            if out.kind in MASK_KINDS:
                region = _mask_region(out, res.mask(i), label, score)
            else:
                x0, y0, x1, y1 = (float(v) for v in res.xyxy[i])
                region = rectangle_region((x0, y0, x1 - x0, y1 - y0), label, image.width, image.height,
                                          from_name=out.name, to_name=out.to_name, item_id=_region_id(), score=score)
            if region is not None:
                regions.append(region)
        mean = float(np.mean([r["score"] for r in regions])) if regions else 0.0
        return {"result": regions, "score": round(mean, 6), "model_version": self.model_version}


def _mask_region(control, mask: np.ndarray, label: str, score: float) -> dict | None:
    from vfm.formats.labelstudio import brush_region, polygon_region

    build = brush_region if control.kind == "brushlabels" else polygon_region
    region = build(np.asarray(mask, dtype=bool), label, from_name=control.name, to_name=control.to_name,
                   item_id=_region_id(), score=round(float(score), 6))
    if region is not None:
        region["readonly"] = False
    return region


def _task_ref(task: dict, key: str) -> Any:
    data = task.get("data")
    if not isinstance(data, dict) or key not in data:
        raise PromptError(f"task {task.get('id')} has no data field '{key}' (the labeling config's Image value=\"${key}\")")
    return data[key]
