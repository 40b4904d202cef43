"""Embeddings and search: ``POST /v1/embed``, ``POST /v1/search``, ``GET /v1/index/images/{n}``.

The index is the one given at ``vfm serve --db PATH``; /v1/embed uses its model (so its vectors
compare with the index's), or the classifier when the server has no index. An image is queried by
its ``image_id`` from ``POST /v1/images``. Hits are those of ``vfm search --json`` without the
server's file paths; ``GET /v1/index/images/{image_id}`` serves an indexed image's bytes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from vfm.errors import VfmError
from vfm.server.parsing import check_count, check_fields, optional_int, optional_string, read_json

router = APIRouter(prefix="/v1", tags=["search"])
MAX_K = 1000
HIDDEN = ("path", "sha256")
#: media types of the files an index holds (by extension), all documented in the OpenAPI document
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".tif": "image/tiff", ".tiff": "image/tiff", ".bmp": "image/bmp", ".gif": "image/gif"}
FALLBACK_TYPE = "application/octet-stream"


class NoIndexError(VfmError):
    http_status = 404


def _texts(body: dict, limit: int) -> list[str]:
    from vfm.errors import PromptError

    value = body.get("text")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise PromptError("'text' must be a string or a non-empty list of strings")
    check_count(len(texts), limit, "texts", "--max-classes")
    return texts


def _one_query(body: dict) -> str:
    from vfm.errors import PromptError

    given = [k for k in ("text", "image_id", "id") if body.get(k) is not None]
    if len(given) != 1:
        raise PromptError("give exactly one query: 'text', 'image_id' (from POST /v1/images) or 'id' (a hit's id)")
    return given[0]


@router.post("/embed", summary="L2-normalised embeddings of texts or of an uploaded image")
async def embed(request: Request):
    """Body ``{"text": "a red car" | [...]}`` or ``{"image_id": "..."}`` → ``{"model", "kind", "dim", "embeddings"}``."""
    body = await read_json(request)
    check_fields(body, ("text", "image_id"))
    which = _one_query({k: body.get(k) for k in ("text", "image_id")})
    holder = request.app.state.models.embedder
    if which == "text":
        texts = _texts(body, request.app.state.config.max_classes)
        vecs = await holder.run(lambda e: e.embed_texts(texts))
    else:
        stored = request.app.state.store.get(optional_string(body, "image_id") or "")
        vecs = await holder.run(lambda e: e.embed_images([stored.image.pixels]))
    return {"model": holder.name, "kind": "text" if which == "text" else "image", "dim": int(vecs.shape[1]),
            "embeddings": [[float(x) for x in v] for v in vecs]}


@router.post("/search", summary="Rank the index's images and objects by similarity to a text, image or entry")
async def search(request: Request):
    """Body ``{"text" | "image_id" | "id", "k"?: 20, "kind"?: "image" | "object"}`` → `vfm search --json`."""
    from vfm.errors import PromptError

    body = await read_json(request)
    check_fields(body, ("text", "image_id", "id", "k", "kind"))
    which = _one_query(body)
    k = optional_int(body, "k")
    k = 20 if k is None else k
    if k < 1:
        raise PromptError(f"'k' must be a positive number of results, got {k}")
    check_count(k, MAX_K, "results", "k")
    kind = optional_string(body, "kind")
    if kind not in (None, "image", "object"):
        raise PromptError(f"'kind' must be 'image' or 'object', got {kind!r}")
    query: dict = {"k": k, "kind": kind}
    if which == "text":
        text = body["text"]
        if not isinstance(text, str) or not text.strip():
            raise PromptError("'text' must be a non-empty string")
        query["text"] = text
    elif which == "image_id":
        query["image"] = request.app.state.store.get(optional_string(body, "image_id") or "").image.pixels
    else:
        query["entry_id"] = optional_int(body, "id")

    def work(searcher):
        searcher.refresh()
        return searcher.query(**query)

    result = await request.app.state.models.searcher.run(work)
    if "image" in result["query"]:
        result["query"] = {"image_id": body["image_id"]}
    for hit in result["hits"]:
        for key in HIDDEN:
            hit.pop(key, None)
    return result


@router.get("/index/images/{image_id}", summary="The bytes of an indexed image (for showing hits)",
            response_class=FileResponse,
            responses={200: {"content": {t: {} for t in sorted(set(MEDIA_TYPES.values())) + [FALLBACK_TYPE]}}})
async def index_image(image_id: int, request: Request):
    """The file of ``image_id`` (a hit's ``image_id``) as stored in SOURCE; 404 if unknown or gone."""
    def work(searcher):
        row = searcher.db.db.execute("SELECT path, name FROM files WHERE id=? AND status='done'", (image_id,)).fetchone()
        return row

    row = await request.app.state.models.searcher.run(work)
    import os

    if row is None or not os.path.isfile(row[0]):
        raise NoIndexError(f"the index has no readable image {image_id}")
    media = MEDIA_TYPES.get(os.path.splitext(row[0])[1].lower(), FALLBACK_TYPE)
    return FileResponse(row[0], media_type=media, filename=os.path.basename(row[1]))
