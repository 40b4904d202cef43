"""Uploads and promptable segmentation: POST /v1/images, POST /v1/images/{image_id}/segment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest

from vfm.errors import ImageError, ImageTooLargeError, PromptError
from vfm.server.parsing import BadRequestError, flag, read_json, segment_prompts

router = APIRouter(prefix="/v1", tags=["images"])

#: multipart framing allowed on top of --max-upload-mb before the Content-Length check refuses
MULTIPART_SLACK = 64 * 1024

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"],
                           "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _too_large(limit: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"the upload is larger than the server's limit of {limit / 1048576:g} MB; "
                              "send a smaller image or start the server with a larger --max-upload-mb")


async def read_upload(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The uploaded image bytes (multipart field ``file``, or a raw image body), counting bytes as they arrive."""
    allowed = limit + MULTIPART_SLACK
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > allowed:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > allowed:
            raise _too_large(limit)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        try:
            form = await StarletteRequest(request.scope, replay).form(max_files=4, max_fields=16)
        except Exception as exc:  # noqa: BLE001 - multipart parser errors vary by version
            raise BadRequestError(f"the multipart body could not be parsed ({exc})") from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise PromptError("the multipart body has no file field named 'file'")
        data = await upload.read()
        name = upload.filename
    else:
        data, name = bytes(body), None
    if len(data) > limit:
        raise _too_large(limit)
    if not data:
        raise ImageError("the upload is empty; send an image file in the multipart field 'file'")
    return data, name


@router.post("/images", summary="Upload an image; computes and caches its embedding",
             openapi_extra=UPLOAD_SCHEMA)
async def upload_image(request: Request, embed: bool | None = None):
    """Multipart field ``file`` (or a raw image body). Returns ``{"image_id", "width", "height"}``.

    The id is a hash of the decoded pixels: the same picture always gets the same id. With
    ``embed`` (default on) the segmenter's image embedding is computed now, so clicks are fast.
    """
    from vfm.io.image import load_image

    app = request.app
    cfg = app.state.config
    data, name = await read_upload(request, cfg.max_upload_bytes)
    image = await run_in_threadpool(load_image, data, max_pixels=cfg.max_pixels, name=name or "upload")
    stored = app.state.store.add(image, name)
    do_embed = cfg.embed_on_upload if embed is None else embed
    if do_embed:
        await app.state.models.segmenter.run(lambda seg: seg.embed(image))
    out = {"image_id": stored.image_id, "width": image.width, "height": image.height, "embedded": bool(do_embed)}
    if name:
        out["file_name"] = name
    return out


@router.get("/images/{image_id}", summary="Size of an uploaded image (404 if unknown or evicted)")
async def image_info(image_id: str, request: Request):
    stored = request.app.state.store.get(image_id)
    return {"image_id": image_id, "width": stored.image.width, "height": stored.image.height}


@router.get("/images/{image_id}/image.png", summary="The decoded image as PNG (what the coordinates refer to)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def image_png(image_id: str, request: Request):
    """The pixels the server works on (EXIF orientation applied), for clients that cannot decode the
    original format (the web page uses it for TIFF and other formats browsers do not show)."""
    import io

    from PIL import Image

    stored = request.app.state.store.get(image_id)

    def encode() -> bytes:
        buf = io.BytesIO()
        Image.fromarray(stored.image.pixels).save(buf, "PNG", compress_level=1)
        return buf.getvalue()

    return Response(await run_in_threadpool(encode), media_type="image/png")


@router.post("/images/{image_id}/segment", summary="Masks from points, boxes and/or a previous mask")
async def segment(image_id: str, request: Request):
    """Body ``{"points": [[x, y]...], "labels": [1, 0...], "box": [x0, y0, x1, y1], "boxes": [[...]...],
    "mask_input": RLE | mask_input_id, "multimask": false}`` → the document of ``vfm segment --json``;
    each annotation also carries a ``mask_input_id`` to pass back as ``mask_input`` for refinement.
    """
    from vfm.formats.coco import instances_to_document

    app = request.app
    body = await read_json(request)
    store = app.state.store
    stored = store.get(image_id)
    h, w = stored.image.height, stored.image.width
    # validated here (fields, points and boxes inside the image), so a bad request fails alone
    from vfm.server.parsing import check_count

    cap = app.state.config.max_prompts
    check_count(len(body.get("boxes") or []) if isinstance(body.get("boxes"), list) else 0, cap, "boxes", "--max-prompts")
    check_count(len(body.get("points") or []) if isinstance(body.get("points"), list) else 0, cap, "points", "--max-prompts")
    prompts = segment_prompts(body, h, w, lambda token: store.get_logits(image_id, token))
    multimask = flag(body, "multimask")

    def work(seg, requests: list) -> list[dict]:
        """Every waiting request on this image (and multimask setting: the batch key) in one decoder
        call; one document per request."""
        emb = seg.cache.get(image_id) if image_id in seg.cache else None
        if emb is None:
            emb = seg.embed(stored.image)[1]
        result = seg.predict_batch([p for r in requests for p in r], multimask=multimask, image=emb)
        logits = result.data.pop("low_res_logits")
        per_prompt = 3 if multimask else 1
        docs, start, first_prompt = [], 0, 0
        for r in requests:
            part = result[start : start + len(r) * per_prompt]
            part.data["prompt_index"] = part.data["prompt_index"] - first_prompt
            doc = instances_to_document(part)  # in the worker thread: RLE encoding is CPU work too
            for ann, lg in zip(doc["annotations"], logits[start : start + len(r) * per_prompt]):
                ann["mask_input_id"] = store.put_logits(image_id, lg)
            docs.append(doc)
            start += len(r) * per_prompt
            first_prompt += len(r)
        return docs

    # clicks on the same image that arrive while the segmenter is busy are decoded together
    doc = await app.state.segment_batcher.run((image_id, multimask), prompts, work)
    # the document is plain JSON types already: skip FastAPI's per-value re-encoding
    return JSONResponse(doc)
