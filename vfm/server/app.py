"""The FastAPI app: ``create_app(config)`` wires models, the upload store, auth, metrics and routes."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from vfm.errors import VfmError
from vfm.server.auth import authorized
from vfm.server.config import ServerConfig
from vfm.server.batching import Batcher
from vfm.server.images import ImageStore
from vfm.server.metrics import Metrics
from vfm.server.models import Models

STATIC = Path(__file__).parent / "static"


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    from vfm import __version__

    config = config or ServerConfig()
    app = FastAPI(title="vfm", version=__version__,
                  description="Vision foundation models as a service: promptable segmentation, detection, "
                              "grounding, classification and tagging on uploaded images. Masks are COCO RLE, "
                              "coordinates original-image pixels, boxes XYXY.")
    app.state.config = config
    app.state.models = Models(config)
    app.state.segment_batcher = Batcher(app.state.models.segmenter)
    app.state.store = ImageStore(config.image_cache_bytes, config.logits_cache_items)
    app.state.metrics = Metrics()

    @app.middleware("http")
    async def auth_and_metrics(request: Request, call_next):
        start = time.perf_counter()
        if request.url.path.startswith("/v1") and not authorized(request.headers.get("authorization"), config.api_key):
            response = error(401, "missing or wrong API key; send the header 'Authorization: Bearer <key>'",
                             {"WWW-Authenticate": "Bearer"})
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", None) or ("/static" if request.url.path.startswith("/static") else "other")
        app.state.metrics.observe(f"{request.method} {name}", response.status_code, time.perf_counter() - start)
        return response

    @app.exception_handler(VfmError)
    async def vfm_error(request: Request, exc: VfmError):
        headers = {"Retry-After": "1"} if exc.http_status == 503 else None
        return error(exc.http_status, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):  # last line of defence: JSON, one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return error(500, f"internal error: {type(exc).__name__}: {msg}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"invalid request: {where}: {first.get('msg', 'malformed')}")

    from vfm.server import routes_images, routes_ops, routes_tasks

    app.include_router(routes_ops.router)
    app.include_router(routes_images.router)
    app.include_router(routes_tasks.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    if config.preload:
        @app.on_event("startup")
        async def preload():  # pragma: no cover - exercised by `vfm serve --preload`
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(app.state.models.preload)

    return app
