"""Operations: the web page, /healthz, /readyz, /metrics."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from vfm.server.metrics import prometheus_text

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index(request: Request):
    from vfm.server.app import STATIC

    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
async def healthz():
    return {"status": "ok"}


def _loadable(holder, task: str) -> tuple[bool, str | None]:
    """Loaded, or resolvable and its weights reachable (a local directory, the HF cache, or the hub)."""
    if holder.loaded:
        return True, None
    from vfm.errors import VfmError
    from vfm.models.registry import hub_online, is_cached, resolve

    try:
        r = resolve(holder.name, task=task)
    except VfmError as exc:
        return False, str(exc)
    if r.is_local or is_cached(r.source) or hub_online():
        return True, None
    return False, f"'{holder.name}' ({r.source}) is not in the local Hugging Face cache and the hub cannot be reached"


@router.get("/readyz", tags=["ops"], summary="Readiness: every configured model is loaded or loadable")
async def readyz(request: Request):
    """Without the API key (when one is set) only the booleans are shown: model names can be paths."""
    from vfm.server.auth import authorized

    config = request.app.state.config
    detailed = authorized(request.headers.get("authorization"), config.api_key)
    models = request.app.state.models
    out, ready = {}, True
    for holder, task in ((models.segmenter, "segment"), (models.detector, "detect"), (models.classifier, "classify")):
        ok, why = await run_in_threadpool(_loadable, holder, task)  # may ask the hub (once, 3 s at most)
        ready &= ok
        out[holder.role] = {"loaded": holder.loaded, "loadable": ok}
        if detailed:
            out[holder.role] = {"model": holder.name, **out[holder.role], **({"error": why} if why else {})}
    return JSONResponse({"ready": ready, "models": out}, status_code=200 if ready else 503)


def metrics_document(app) -> dict:
    models = app.state.models
    seg = models.segmenter
    cache = {"embedding_hits": 0, "embedding_misses": 0, "embeddings_cached": 0, "embedding_bytes": 0}
    if seg.loaded:
        c = seg.get().cache
        cache = {"embedding_hits": c.hits, "embedding_misses": c.misses, "embeddings_cached": len(c),
                 "embedding_bytes": c.nbytes}
    cache.update(app.state.store.stats())
    holders = [models.segmenter, models.detector, models.classifier, models.grounder, models.tagger, models.everything]
    return {
        "uptime_s": round(time.time() - app.state.metrics.started, 1),
        "cancelled_requests": app.state.metrics.cancelled,
        "routes": app.state.metrics.routes(),
        "cache": cache,
        "models": {h.role: h.status() for h in holders},
        "segment_batching": {"batches": app.state.segment_batcher.batches,
                             "requests": app.state.segment_batcher.batched_requests,
                             "waiting": app.state.segment_batcher.waiting},
    }


@router.get("/metrics", tags=["ops"], summary="Requests, latency percentiles and cache counters (JSON or ?format=prometheus)")
async def metrics(request: Request, format: Literal["json", "prometheus"] = "json"):
    doc = metrics_document(request.app)
    if format == "prometheus":
        return PlainTextResponse(prometheus_text(doc), media_type="text/plain; version=0.0.4")
    return doc
