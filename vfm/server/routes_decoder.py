"""Clicks decoded in the browser: the prompt decoder as ONNX and the image embedding as fp16 bytes.

``GET /v1/models/{name}/decoder.onnx`` — the segmenter's prompt decoder (vfm.models.backends.
decoder_export), exported once per checkpoint into vfm's cache dir, served with an ETag and a
day-long Cache-Control so the browser keeps it. ``{name}`` is ``segmenter`` or the server's
--segmenter name. A family without an exported decoder answers 501 (the page then decodes on the
server).

``GET /v1/images/{image_id}/embedding?dtype=fp16`` — the image's embedding, row-major little-endian
(fp16 by default: 2 MB for SAM's 1x256x64x64; ``fp32`` on request), with the shape, the model's input
size and the image size in headers (``X-Embedding-Shape``, ``X-Input-Size``, ``X-Original-Size``: h,w).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from vfm.errors import DependencyError, PromptError, VfmError

router = APIRouter(prefix="/v1", tags=["browser decoding"])

DAY = 86400


class NoDecoderError(VfmError):
    http_status = 501


class UnknownModelError(VfmError):
    http_status = 404


def _decoder_file(seg):
    from vfm.models.backends import EXPORTABLE_FAMILIES
    from vfm.models.backends.cache import export_dir, weights_key
    from vfm.models.backends.decoder_export import DECODER_VERSION, PromptDecoder, export_decoder

    adapter = seg.model
    if adapter.family not in EXPORTABLE_FAMILIES or adapter.fast_decoder is None:
        raise NoDecoderError(f"the segmenter '{adapter.name}' ({adapter.family}) has no exported decoder; "
                             "decode on the server with POST /v1/images/{image_id}/segment")
    size = adapter.prep.image_size
    key = weights_key(PromptDecoder(adapter.model, size), "decoder", DECODER_VERSION, size)
    path = export_dir(key) / "decoder.onnx"
    try:
        export_decoder(adapter.model, size, path)
    except ImportError as exc:
        raise DependencyError(f"exporting the decoder needs the onnx package ({exc}); pip install 'vfm[onnxruntime]'") from exc
    return path, key


@router.get("/models/{name}/decoder.onnx", summary="The segmenter's prompt decoder as ONNX, for decoding clicks in the browser",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
async def decoder_onnx(name: str, request: Request):
    holder = request.app.state.models.segmenter
    if not request.app.state.config.browser_decoding:
        raise NoDecoderError("this server decodes clicks itself (vfm serve --no-browser-decoding); "
                             "use POST /v1/images/{image_id}/segment")
    configured = str(holder.name or "")
    if name not in ("segmenter", configured, configured.rstrip("/").rsplit("/", 1)[-1]):
        raise UnknownModelError(f"this server's segmenter is '{configured}'; ask for /v1/models/segmenter/decoder.onnx")
    path, key = await holder.run(_decoder_file)
    etag = f'"{key}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": f"public, max-age={DAY}"})
    return FileResponse(path, media_type="application/octet-stream", filename="decoder.onnx",
                        headers={"ETag": etag, "Cache-Control": f"public, max-age={DAY}"})


@router.get("/images/{image_id}/embedding", summary="The image's segmenter embedding as raw fp16 (or fp32) bytes",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
async def embedding(image_id: str, request: Request, dtype: str = "fp16"):
    import numpy as np

    if dtype not in ("fp16", "fp32"):
        raise PromptError(f"dtype '{dtype}' is not fp16 or fp32")
    stored = request.app.state.store.get(image_id)

    def work(seg):
        if seg.model.family != "sam":
            raise NoDecoderError(f"the segmenter '{seg.model.name}' ({seg.model.family}) is decoded on the server only")
        _, emb = seg.embed(stored.image)
        return emb

    emb = await request.app.state.models.segmenter.run(work)
    array = emb.tensors["image_embeddings"].float().cpu().numpy()
    data = array.astype("<f2" if dtype == "fp16" else "<f4").tobytes()
    ih, iw = emb.frame.input_size
    h, w = emb.frame.original_size
    return Response(data, media_type="application/octet-stream", headers={
        "X-Embedding-Shape": ",".join(str(int(d)) for d in array.shape), "X-Embedding-Dtype": dtype,
        "X-Input-Size": f"{ih},{iw}", "X-Original-Size": f"{h},{w}", "Cache-Control": "private, max-age=3600",
        "Access-Control-Expose-Headers": "X-Embedding-Shape, X-Embedding-Dtype, X-Input-Size, X-Original-Size"})
