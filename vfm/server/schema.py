"""The OpenAPI document: request and response models of every endpoint, one error model, the status
codes each endpoint answers, and an HTTP bearer scheme when an API key is set.

Handlers parse bodies themselves (vfm.server.parsing: byte and depth caps before parsing, one-line
errors); the pydantic models here describe the same rules for clients and fuzzers: a body these
schemas forbid (wrong types, unknown fields, numbers out of range) is answered 4xx. Rules a schema
cannot say (a point inside this image, a decodable upload, a template with ``{}``) are answered 422
or 415 with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Unit = Annotated[float, Field(ge=0, le=1)]
Coord = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """Every error: one sentence that says what was wrong and what to do."""

    error: str


class RLE(Strict):
    size: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
    counts: Union[str, list[Annotated[int, Field(ge=0)]]]


def _bodies(c) -> dict[str, type[BaseModel]]:
    """Request models, with the server's caps (``c``: ServerConfig) as bounds."""
    Classes = Union[Annotated[str, Field(min_length=1)], Annotated[list[str], Field(min_length=1, max_length=c.max_classes)]]
    Point = Annotated[list[Coord], Field(min_length=2, max_length=2)]
    Box = Annotated[list[Coord], Field(min_length=4, max_length=4)]

    class SegmentBody(Strict):
        points: Annotated[list[Point], Field(max_length=c.max_prompts)] | None = None
        labels: Annotated[list[Literal[0, 1]], Field(max_length=c.max_prompts)] | None = None
        box: Box | None = None
        boxes: Annotated[list[Box], Field(max_length=c.max_prompts)] | None = None
        mask_input: Union[RLE, str, None] = None
        mask_input_id: str | None = None
        multimask: bool = False

    class DetectBody(Strict):
        classes: Classes
        box_threshold: Unit | None = None
        text_threshold: Unit | None = None

    class ClassifyBody(Strict):
        labels: Classes
        template: str | None = None
        top_k: Annotated[int, Field(ge=1)] | None = None

    class TagBody(Strict):
        threshold: Unit | None = None
        top_k: Annotated[int, Field(ge=1)] | None = None

    class EverythingBody(Strict):
        points_per_side: Annotated[int, Field(ge=1, le=c.max_points_per_side)] | None = None
        crop_n_layers: Annotated[int, Field(ge=0, le=c.max_crop_layers)] | None = None
        pred_iou_thresh: Annotated[float, Field(allow_inf_nan=False)] | None = None
        stability_score_thresh: Unit | None = None
        min_mask_region_area: Annotated[int, Field(ge=0)] | None = None

    Texts = Union[Annotated[str, Field(min_length=1)], Annotated[list[str], Field(min_length=1, max_length=c.max_classes)]]

    class EmbedBody(Strict):
        """Exactly one of ``text`` and ``image_id`` (an upload's id from POST /v1/images)."""

        text: Texts | None = None
        image_id: str | None = None

    class SearchBody(Strict):
        """Exactly one of ``text``, ``image_id`` (from POST /v1/images) and ``id`` (a hit's entry id)."""

        text: Annotated[str, Field(min_length=1)] | None = None
        image_id: str | None = None
        id: Annotated[int, Field(ge=1)] | None = None
        k: Annotated[int, Field(ge=1, le=1000)] | None = None
        kind: Literal["image", "object"] | None = None

    class LSTask(BaseModel):
        """A Label Studio task as it sends it (other fields are passed through)."""

        model_config = ConfigDict(extra="allow")
        id: int | None = None
        data: dict[str, Any]

    class SetupBody(BaseModel):
        """What Label Studio sends when a project connects the model."""

        model_config = ConfigDict(extra="allow", populate_by_name=True)
        project: str | None = None
        label_config_schema: Annotated[str, Field(alias="schema", min_length=1)]
        hostname: str | None = None
        access_token: str | None = None
        extra_params: Union[dict[str, Unit], str, None] = None

    class PredictBody(BaseModel):
        """Tasks to predict; ``params.context.result`` holds the smart-tool regions of an interactive request."""

        model_config = ConfigDict(extra="allow")
        tasks: Annotated[list[LSTask], Field(min_length=1)]
        label_config: Annotated[str, Field(min_length=1)]
        project: str | None = None
        params: dict[str, Any] | None = None

    class WebhookBody(BaseModel):
        model_config = ConfigDict(extra="allow")
        action: Annotated[str, Field(min_length=1)]

    class TrackPrompt(Strict):
        frame: Annotated[int, Field(ge=0)]
        object: Annotated[int, Field(ge=1, le=65535)] = 1
        points: Annotated[list[Point], Field(max_length=c.max_prompts)] | None = None
        labels: Annotated[list[Literal[0, 1]], Field(max_length=c.max_prompts)] | None = None
        box: Box | None = None
        mask: RLE | None = None

    class TrackBody(Strict):
        """``prompts`` (as `vfm track --prompts`; masks as COCO RLE) and/or ``classes`` to detect on the first frame,
        or (a server started with ``--tracker sam3``) ``text``: noun phrases whose every instance is tracked."""

        prompts: Annotated[list[TrackPrompt], Field(max_length=c.max_prompts)] | None = None
        start: Annotated[int, Field(ge=0)] | None = None
        end: Annotated[int, Field(ge=1)] | None = None
        stride: Annotated[int, Field(ge=1)] | None = None
        overlay: bool = True
        classes: Classes | None = None
        box_threshold: Unit | None = None
        text_threshold: Unit | None = None
        redetect_every: Annotated[int, Field(ge=0)] | None = None
        match_iou: Unit | None = None
        text: Classes | None = None
        threshold: Unit | None = None
        new_object_threshold: Unit | None = None

    Tokens = Annotated[int, Field(ge=1, le=c.max_new_tokens)]
    Temperature = Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)]

    class CaptionBody(Strict):
        """``image_id`` from POST /v1/images; greedy unless ``temperature`` > 0; ``ground``: boxes and masks of the
        caption's phrases (Florence-2 phrase grounding + the segmenter)."""

        image_id: Annotated[str, Field(min_length=1)]
        detailed: bool = False
        max_new_tokens: Tokens | None = None
        temperature: Temperature | None = None
        ground: bool = False

    class AskBody(Strict):
        """``image_id`` from POST /v1/images and a ``question`` for the server's --vlm."""

        image_id: Annotated[str, Field(min_length=1)]
        question: Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S")]
        max_new_tokens: Tokens | None = None
        temperature: Temperature | None = None
        ground: bool = False

    return {"caption": CaptionBody, "ask": AskBody, "track": TrackBody, "setup": SetupBody, "predict": PredictBody, "webhook": WebhookBody, "embed": EmbedBody, "search": SearchBody, "segment": SegmentBody, "detect": DetectBody, "ground": DetectBody, "classify": ClassifyBody,
            "tag": TagBody, "everything": EverythingBody}


class ImageInfo(BaseModel):
    image_id: str
    width: int
    height: int
    embedded: bool | None = None
    file_name: str | None = None


class VideoInfo(BaseModel):
    video_id: str
    width: int
    height: int
    frames: int
    fps: float
    duration: float | None = None
    frames_ready: int
    file_name: str | None = None


class Job(BaseModel):
    """A background job: ``status`` queued / running / done / failed / cancelled, ``progress`` in frames,
    ``results`` (links to the files) once done."""

    model_config = ConfigDict(extra="allow")
    job_id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: dict[str, Any]
    error: str | None = None
    warnings: list[str] = []
    results: dict[str, Any] | None = None


class Document(BaseModel):
    """The COCO-style document of the CLI's --json (annotations: COCO RLE masks, XYWH boxes)."""

    model_config = ConfigDict(extra="allow")
    image: dict[str, Any]
    annotations: list[dict[str, Any]]
    categories: list[dict[str, Any]] | None = None


class LabelsDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    image: dict[str, Any]
    labels: list[dict[str, Any]]
    activation: str


class AnswerDocument(BaseModel):
    """As `vfm caption --json` / `vfm ask --json`; grounded answers add COCO-style image, categories, annotations."""

    model_config = ConfigDict(extra="allow")
    answer: str
    model: str
    tokens: int
    seconds: float


class Embeddings(BaseModel):
    model: str | None
    kind: Literal["text", "image"]
    dim: int
    embeddings: list[list[float]]


class ModelVersion(BaseModel):
    model_version: str


class Predictions(BaseModel):
    """One prediction per task: ``{"result": [Label Studio regions], "score", "model_version", "error"?}``."""

    results: list[dict[str, Any]]
    model_version: str


class SearchResult(BaseModel):
    """As `vfm search --json`: hits ranked by cosine score, with the time spent embedding and searching."""

    model_config = ConfigDict(extra="allow")
    query: dict[str, Any]
    k: int
    hits: list[dict[str, Any]]
    timing_ms: dict[str, float]
    index: dict[str, Any]


ERRORS = {
    400: "the body is not a JSON object, or is nested deeper than --max-json-depth",
    401: "the API key is missing or wrong",
    404: "no such image, video, job or route (unknown or evicted), a job not done yet, or the server has no index (--db)",
    413: "the body or image is over the server's size limits",
    415: "the upload is not a readable image or video",
    422: "a field is malformed or out of range, a prompt lies outside the image, or a request is over a cap",
    501: "a task this installation does not have",
    503: "the model is busy (Retry-After) or cannot be loaded",
}

#: (method, path) -> (request body model name or None, response model, status codes besides 200)
OPERATIONS = {
    ("post", "/v1/images"): (None, ImageInfo, (400, 401, 413, 415, 422, 503)),
    ("get", "/v1/images/{image_id}"): (None, ImageInfo, (401, 404, 422)),
    ("get", "/v1/images/{image_id}/image.png"): (None, None, (401, 404, 422)),
    ("post", "/v1/images/{image_id}/segment"): ("segment", Document, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/images/{image_id}/detect"): ("detect", Document, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/images/{image_id}/ground"): ("ground", Document, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/images/{image_id}/classify"): ("classify", LabelsDocument, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/images/{image_id}/tag"): ("tag", LabelsDocument, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/images/{image_id}/everything"): ("everything", Document, (400, 401, 404, 413, 422, 501, 503)),
    ("get", "/v1/models/{name}/decoder.onnx"): (None, None, (401, 404, 501, 503)),
    ("get", "/v1/images/{image_id}/embedding"): (None, None, (401, 404, 422, 501, 503)),
    ("post", "/v1/caption"): ("caption", AnswerDocument, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/ask"): ("ask", AnswerDocument, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/embed"): ("embed", Embeddings, (400, 401, 404, 413, 422, 503)),
    ("post", "/v1/search"): ("search", SearchResult, (400, 401, 404, 413, 422, 503)),
    ("get", "/v1/index/images/{image_id}"): (None, None, (400, 401, 404, 422, 503)),
    ("post", "/v1/videos"): (None, VideoInfo, (400, 401, 413, 415, 422)),
    ("get", "/v1/videos/{video_id}"): (None, VideoInfo, (401, 404)),
    ("get", "/v1/videos/{video_id}/frames/{frame}.jpg"): (None, None, (401, 404, 422)),
    ("post", "/v1/videos/{video_id}/track"): ("track", Job, (400, 401, 404, 413, 415, 422)),
    ("get", "/v1/jobs/{job_id}"): (None, Job, (401, 404)),
    ("delete", "/v1/jobs/{job_id}"): (None, Job, (401, 404)),
    ("get", "/v1/jobs/{job_id}/files/{name}"): (None, None, (401, 404)),
    ("get", "/v1/jobs/{job_id}/masks/{frame}.png"): (None, None, (401, 404, 422)),
    ("get", "/metrics"): (None, None, (422,)),
    ("get", "/health"): (None, None, (401,)),
    ("post", "/setup"): ("setup", ModelVersion, (400, 401, 413, 422)),
    ("post", "/predict"): ("predict", Predictions, (400, 401, 404, 413, 415, 422, 501, 503)),
    ("post", "/webhook"): ("webhook", None, (400, 401, 413, 422)),
}


def _ref(schema: dict, components: dict) -> dict:
    """Move pydantic's $defs into components/schemas and point $refs there."""
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    return schema


def openapi_document(app) -> dict:
    """FastAPI's document with the bodies, responses, error model and security scheme above."""
    from fastapi.openapi.utils import get_openapi

    from vfm.server.app import LABEL_STUDIO_PATHS

    config = app.state.config
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    tmpl = "#/components/schemas/{model}"
    comps["Error"] = Error.model_json_schema(ref_template=tmpl)
    for name, model in _bodies(config).items():
        comps[f"{name.capitalize()}Request"] = _ref(model.model_json_schema(ref_template=tmpl), comps)
    for model in (ImageInfo, VideoInfo, Job, Document, LabelsDocument, Embeddings, SearchResult, ModelVersion, Predictions):
        comps[model.__name__] = _ref(model.model_json_schema(ref_template=tmpl), comps)
    doc["components"]["schemas"].pop("HTTPValidationError", None)
    doc["components"]["schemas"].pop("ValidationError", None)
    if config.api_key:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                           "description": "vfm serve --api-key / VFM_API_KEY"}}
    err = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for (method, path), (body, response, codes) in OPERATIONS.items():
        op = doc["paths"].get(path, {}).get(method)
        if op is None:
            continue
        if body is not None:
            op["requestBody"] = {"required": body not in ("tag", "everything"), "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body.capitalize()}Request"}}}}
        responses = {k: v for k, v in op.get("responses", {}).items() if k != "422"}
        if response is not None:
            responses["202" if path.endswith("/track") else "200"] = {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{response.__name__}"}}}}
        for code in codes:
            if code == 401 and not config.api_key:
                continue
            responses[str(code)] = {"description": ERRORS.get(code, "not ready"), "content": err}
        op["responses"] = responses
        if (path.startswith("/v1") or path in LABEL_STUDIO_PATHS) and config.api_key:
            op["security"] = [{"bearer": []}]
    metrics = doc["paths"].get("/metrics", {}).get("get")
    if metrics is not None:  # ?format=prometheus answers the text exposition format
        metrics["responses"]["200"] = {"description": "OK", "content": {
            "application/json": {"schema": {"type": "object"}}, "text/plain": {"schema": {"type": "string"}}}}
    ready = doc["paths"].get("/readyz", {}).get("get")
    if ready is not None:  # 503 carries the same readiness document, not an error
        ready["responses"]["503"] = {"description": "a configured model cannot be loaded",
                                     "content": {"application/json": {"schema": {"type": "object"}}}}
    return doc
