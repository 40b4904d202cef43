"""The FastAPI app: ``create_app(config)`` wires models, the upload store, auth, metrics and routes."""

from __future__ import annotations

import threading
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
#: Label Studio's ML backend routes: behind the API key too (Label Studio sends it as Basic Auth)
LABEL_STUDIO_PATHS = ("/health", "/setup", "/predict", "/webhook")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    from vfm import __version__

    config = config or ServerConfig()
    app = FastAPI(title="vfm", version=__version__, docs_url=None, redoc_url=None,
                  description="Vision foundation models as a service: promptable segmentation, detection, "
                              "grounding, classification and tagging on uploaded images; video tracking as background jobs; embeddings and search of an index (--db). Masks are COCO RLE, "
                              "coordinates original-image pixels, boxes XYXY.")
    app.state.config = config
    app.state.models = Models(config)
    app.state.segment_batcher = Batcher(app.state.models.segmenter)
    app.state.store = ImageStore(config.image_cache_bytes, config.logits_cache_items)
    app.state.metrics = Metrics()
    app.state.shutdown = threading.Event()  # set on shutdown: running work stops at its next batch
    from vfm.labelstudio.backend import LabelStudioBackend
    from vfm.labelstudio.fetch import Host

    app.state.labelstudio = LabelStudioBackend(app.state, host=Host(config.label_studio_url, config.label_studio_token),
                                               root=config.label_studio_root)

    app.add_middleware(AuthAndMetrics, api_key=config.api_key, metrics=app.state.metrics, router=app.router)

    def openapi():
        if app.openapi_schema is None:
            from vfm.server.schema import openapi_document

            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi

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

    from vfm.server import routes_images, routes_labelstudio, routes_ops, routes_search, routes_tasks, routes_videos, routes_vlm, routes_decoder

    app.include_router(routes_ops.router)
    app.include_router(routes_images.router)
    app.include_router(routes_tasks.router)
    app.include_router(routes_search.router)
    app.include_router(routes_labelstudio.router)
    app.include_router(routes_videos.router)
    app.include_router(routes_vlm.router)
    app.include_router(routes_decoder.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _offline_docs(app)

    @app.on_event("shutdown")
    async def stop_work():
        app.state.shutdown.set()
        if getattr(app.state, "videos", None) is not None:
            app.state.jobs.shutdown()
            app.state.videos.close()

    if config.preload:
        @app.on_event("startup")
        async def preload():  # pragma: no cover - exercised by `vfm serve --preload`
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(app.state.models.preload)

    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from files in the package (fastapi-offline's copies), not a CDN."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    try:
        import fastapi_offline
    except ImportError:  # pragma: no cover - the server extra installs it
        return
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static-docs", StaticFiles(directory=assets), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="vfm API",
                                   swagger_js_url="/static-docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static-docs/swagger-ui.css",
                                   swagger_favicon_url="/static-docs/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return get_redoc_html(openapi_url=app.openapi_url, title="vfm API",
                              redoc_js_url="/static-docs/redoc.standalone.js", redoc_favicon_url="/static-docs/favicon.png",
                              with_google_fonts=False)


class AuthAndMetrics:
    """ASGI middleware: the API key on /v1, and a latency / status sample per route.

    Plain ASGI (not Starlette's BaseHTTPMiddleware) so the app sees the client's disconnect
    (``request.is_disconnected()``), which stops a request's work (vfm.server.cancel).
    """

    def __init__(self, app, api_key: str | None, metrics: Metrics, router=None):
        self.app, self.api_key, self.metrics, self.router = app, api_key, metrics, router

    def _needs_key(self, scope) -> bool:
        """A /v1 or Label Studio request that an endpoint would serve: unknown paths stay 404 and wrong methods 405."""
        path = scope.get("path", "")
        if not self.api_key or not (path.startswith("/v1") or path in LABEL_STUDIO_PATHS):
            return False
        if self.router is None:
            return True
        from starlette.routing import Match

        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path = scope.get("path", "")
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            if self._needs_key(scope) and not authorized(headers.get("authorization"), self.api_key):
                response = error(401, "missing or wrong API key; send the header 'Authorization: Bearer <key>' "
                                      "(Label Studio: Basic Auth with the key as password)",
                                 {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or ("/static" if path.startswith("/static") else "other")
            self.metrics.observe(f"{scope.get('method', 'GET')} {name}", status[0], time.perf_counter() - start)
