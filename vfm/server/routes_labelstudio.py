"""Label Studio's ML backend protocol: GET /health, POST /setup, /predict, /webhook (vfm.labelstudio).

"Connect model" in a Label Studio project calls /health and /setup; pre-annotation ("Retrieve
predictions", or new tasks with the model connected) and the smart tools call /predict. Errors are
vfm's one-line JSON ``{"error": ...}`` with a 4xx status, and are logged on the server's console
(Label Studio shows only the status).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from vfm.errors import VfmError
from vfm.server.parsing import read_json

router = APIRouter(tags=["label-studio"])
log = logging.getLogger("vfm.labelstudio")

#: Label Studio sends tasks with their predictions and annotations (brush RLEs): a larger JSON cap
LS_JSON_FACTOR = 32


def _backend(request: Request):
    return request.app.state.labelstudio


async def _body(request: Request, kind: str) -> dict:
    """The JSON body, checked against the same model the OpenAPI document declares (vfm.server.schema)."""
    from pydantic import ValidationError

    from vfm.errors import PromptError
    from vfm.server.schema import _bodies

    body = await read_json(request, limit=request.app.state.config.max_json_bytes * LS_JSON_FACTOR)
    state = request.app.state
    if getattr(state, "body_models", None) is None:
        state.body_models = _bodies(state.config)
    try:
        state.body_models[kind].model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise PromptError(f"invalid Label Studio {kind} request: {where}: {first.get('msg', 'malformed')}") from None
    return body


def _logged(route: str, exc: VfmError) -> VfmError:
    log.warning("vfm Label Studio backend: %s: %s", route, exc)
    return exc


@router.get("/health", summary="Label Studio ML backend: health check")
async def health(request: Request):
    return {"status": "UP", "model_class": "vfm", "model_version": _backend(request).model_version}


@router.post("/setup", summary="Label Studio ML backend: a project connects (labeling config, host, token)")
async def setup(request: Request):
    """Body as Label Studio sends it: ``{"project": "ID.TIMESTAMP", "schema": "<View>...", "hostname",
    "access_token", "extra_params"?}`` → ``{"model_version"}``. Checks the config has an Image and a
    BrushLabels/PolygonLabels/RectangleLabels tag; ``extra_params`` may set ``box_threshold`` and
    ``text_threshold`` for pre-annotation."""
    try:
        return _backend(request).setup(await _body(request, "setup"))
    except VfmError as exc:
        raise _logged("/setup", exc) from None


@router.post("/predict", summary="Label Studio ML backend: predictions for tasks (interactive with context)")
async def predict(request: Request):
    """Body ``{"tasks": [...], "label_config", "project", "params": {"context": {"result": [...]}}}`` →
    ``{"results": [{"result": [regions], "score", "model_version"}...], "model_version"}``, one
    prediction per task."""
    try:
        return await _backend(request).predict(await _body(request, "predict"))
    except VfmError as exc:
        raise _logged("/predict", exc) from None


@router.post("/webhook", summary="Label Studio ML backend: project events (vfm does not train: acknowledged)")
async def webhook(request: Request):
    body = await _body(request, "webhook")  # e.g. {"action": "ANNOTATION_CREATED", ...}
    return {"status": "ok", "action": body["action"], "trained": False}
