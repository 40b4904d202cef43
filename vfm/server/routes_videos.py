"""Videos and tracking jobs: upload a video, prompt objects on any frame, track them in the background.

POST /v1/videos                          upload (multipart field ``file`` or a raw body) -> video info
GET  /v1/videos/{video_id}               video info (size, frames, fps, frames decoded so far)
GET  /v1/videos/{video_id}/frames/{n}.jpg  frame n as JPEG (the page's scrubber)
POST /v1/videos/{video_id}/track         ``{"prompts": [...], "start", "end", "stride", ...}`` -> 202 job
GET  /v1/jobs/{job_id}                   status, progress, results
DELETE /v1/jobs/{job_id}                 cancel
GET  /v1/jobs/{job_id}/files/{name}      tracks.jsonl, mot.txt, ytvis.json, overlay.mp4, masks.zip
GET  /v1/jobs/{job_id}/masks/{n}.png     frame n's DAVIS indexed mask
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as StarletteRequest

from vfm.errors import PromptError, VideoError
from vfm.server.jobs import JobManager, UnknownJobError
from vfm.server.parsing import BadRequestError, PayloadTooLargeError, read_json
from vfm.server.videos import UnknownVideoError, VideoStore, check_frame_number

router = APIRouter(prefix="/v1", tags=["videos"])

TRACK_FIELDS = ("prompts", "start", "end", "stride", "overlay", "classes", "box_threshold", "text_threshold",
                "redetect_every", "match_iou", "text", "threshold", "new_object_threshold")
FILES = {"tracks.jsonl": "application/x-ndjson", "mot.txt": "text/plain", "ytvis.json": "application/json",
         "overlay.mp4": "video/mp4", "masks.zip": "application/zip"}

VIDEO_UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "video/*": {"schema": {"type": "string", "format": "binary"}}}}}


def video_store(app) -> VideoStore:
    if getattr(app.state, "videos", None) is None:
        cfg = app.state.config
        app.state.videos = VideoStore(cfg.video_dir, cfg.max_pixels)
        app.state.jobs = JobManager(app.state.videos.root / "jobs", cfg.max_jobs)
    return app.state.videos


def job_manager(app) -> JobManager:
    video_store(app)
    return app.state.jobs


async def _receive_to_file(request: Request, limit: int) -> tuple[Path, str | None]:
    """The upload streamed to a temp file (never all in memory), refused past ``limit`` bytes."""
    too_large = PayloadTooLargeError(f"the video is larger than the server's limit of {limit / 1048576:g} MB; "
                                     "send a shorter video or start the server with a larger --max-video-upload-mb")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + 65536:
        raise too_large
    root = video_store(request.app).root / "uploads"
    root.mkdir(exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, suffix=".upload")
    path = Path(name)
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            received = 0

            async def counting():
                nonlocal received
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > limit + 65536:
                    raise too_large
                return message

            try:
                form = await StarletteRequest(request.scope, counting).form(max_files=1, max_fields=8)
            except PayloadTooLargeError:
                raise
            except Exception as exc:  # noqa: BLE001 - multipart parser errors vary by version
                raise BadRequestError(f"the multipart body could not be parsed ({exc})") from None
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise PromptError("the multipart body has no file field named 'file'")
            size = 0
            with os.fdopen(fd, "wb") as out:
                fd = None
                while chunk := await upload.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise too_large
                    out.write(chunk)
            file_name = upload.filename
        else:
            size = 0
            with os.fdopen(fd, "wb") as out:
                fd = None
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise too_large
                    out.write(chunk)
            file_name = None
        if size == 0:
            raise VideoError("the upload is empty; send a video file in the multipart field 'file'")
        return path, file_name
    except BaseException:
        if fd is not None:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise


@router.post("/videos", summary="Upload a video; its frames are decoded for the page in the background",
             openapi_extra=VIDEO_UPLOAD_SCHEMA)
async def upload_video(request: Request):
    """Multipart field ``file`` (or a raw body): mp4, mov, mkv, webm, avi... Returns
    ``{"video_id", "width", "height", "frames", "fps", "duration", "frames_ready"}``."""
    cfg = request.app.state.config
    path, name = await _receive_to_file(request, int(cfg.max_video_upload_mb * 1048576))
    video = await run_in_threadpool(video_store(request.app).add, path, name)
    return video.info()


@router.get("/videos/{video_id}", summary="A video's size, frame count and frame rate")
async def video_info(video_id: str, request: Request):
    return video_store(request.app).get(video_id).info()


@router.get("/videos/{video_id}/frames/{frame}.jpg", summary="One frame as JPEG (display orientation)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def video_frame(video_id: str, frame: str, request: Request):
    n = check_frame_number(frame)
    path = await run_in_threadpool(video_store(request.app).frame, video_id, n)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def _int(body: dict, key: str, low: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise PromptError(f"'{key}' must be a whole number >= {low}")
    return v


@router.post("/videos/{video_id}/track", status_code=202, summary="Track prompted objects through the video (a job)")
async def track_video(video_id: str, request: Request):
    """Body ``{"prompts": [{"frame", "object", "points", "labels", "box", "mask" (COCO RLE)}], "start"?,
    "end"?, "stride"?, "overlay"? (default true), "classes"?, "box_threshold"?, "text_threshold"?,
    "redetect_every"?, "match_iou"?, "text"?, "threshold"?, "new_object_threshold"?}``: the same prompts
    as `vfm track --prompts`, or class names to detect on the first frame, or (a server started with
    ``--tracker sam3``) ``"text"``: noun phrases whose every instance SAM 3 tracks, as `vfm track --text`. Answers 202 with the job; poll ``GET /v1/jobs/{job_id}``."""
    from vfm.video.prompts import check_prompts, prompt_entries
    from vfm.video.reader import open_video

    body = await read_json(request)
    unknown = sorted(set(body) - set(TRACK_FIELDS))
    if unknown:
        raise PromptError(f"unknown field(s) {unknown}; expected some of {list(TRACK_FIELDS)}")
    video = video_store(request.app).get(video_id)
    cfg = request.app.state.config
    raw = body.get("prompts") or []
    if not isinstance(raw, list):
        raise PromptError("'prompts' must be a list of {\"frame\", \"object\", \"points\", \"labels\", \"box\", \"mask\"}")
    if len(raw) > cfg.max_prompts:
        raise PromptError(f"{len(raw)} prompts is over the server's --max-prompts {cfg.max_prompts}")
    prompts = prompt_entries(raw, "prompts", max_points=cfg.max_prompts)
    classes = None
    if body.get("classes") is not None:
        from vfm.server.parsing import names
        from vfm.tasks.classes import parse_classes

        classes = parse_classes(names(body, "classes"))
        if not classes:
            raise PromptError("'classes' is empty; give class names, e.g. \"person, car\"")
        if len(classes) > cfg.max_classes:
            raise PromptError(f"{len(classes)} classes is over the server's --max-classes {cfg.max_classes}")
    texts = None
    if body.get("text") is not None:
        from vfm.models.registry import is_concept_model
        from vfm.server.parsing import names

        v = names(body, "text")
        texts = [t.strip() for t in ([v] if isinstance(v, str) else v) if t.strip()]
        if not texts:
            raise PromptError("'text' is empty; give a noun phrase, e.g. \"person\", or a list of them")
        if len(texts) > cfg.max_classes:
            raise PromptError(f"{len(texts)} phrases is over the server's --max-classes {cfg.max_classes}")
        if prompts or classes is not None:
            raise PromptError("'text' tracks every instance on its own; send 'prompts' or 'classes' in another job")
        if not is_concept_model(cfg.tracker):
            raise PromptError(f"'text' tracking needs SAM 3; this server tracks with '{cfg.tracker}' "
                              "(start it with vfm serve --tracker sam3), or send 'classes' instead")
    elif body.get("threshold") is not None or body.get("new_object_threshold") is not None:
        raise PromptError("'threshold' and 'new_object_threshold' go with 'text' (SAM 3)")
    if not prompts and classes is None and texts is None:
        raise PromptError("give 'prompts' (clicks, boxes or masks on frames), 'classes' or (SAM 3) 'text' to track")
    start, end, stride = _int(body, "start", 0) or 0, _int(body, "end", 1), _int(body, "stride", 1) or 1
    redetect = _int(body, "redetect_every", 0) or 0
    thresholds = {}
    for key in ("box_threshold", "text_threshold", "match_iou", "threshold", "new_object_threshold"):
        v = body.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
            raise PromptError(f"'{key}' must be a number from 0 to 1")
        thresholds[key] = v
    overlay = body.get("overlay", True)
    if not isinstance(overlay, bool):
        raise PromptError("'overlay' must be true or false")
    src = await run_in_threadpool(open_video, str(video.path), start=start, end=end, stride=stride,
                                  max_pixels=cfg.max_pixels)
    check_prompts(prompts, width=src.width, height=src.height, video=src)
    models = request.app.state.models
    params = {"video_id": video_id, "start": start, "end": end, "stride": stride}

    def work(job):
        return _track(job, src, prompts, models, classes, thresholds, redetect, overlay, texts)

    job = job_manager(request.app).submit("track", params, work)
    job.total = src.selected_count()
    return JSONResponse(job.to_json(), status_code=202)


def _track(job, src, prompts, models, classes, thresholds, redetect, overlay, texts=None) -> dict:
    from vfm.video.run import grounded, track_video

    if texts is not None:
        from vfm.video.concept_tracker import TextPrompts

        tracker = TextPrompts(models.concept_tracker.get(), texts, total_frames=src.selected_count(),
                              threshold=thresholds.get("threshold"), new_threshold=thresholds.get("new_object_threshold"))
    else:
        tracker = models.tracker.get()
    discover = None
    if classes is not None:
        discover = grounded(models.detector.get(), classes, prompts, box_threshold=thresholds.get("box_threshold"),
                            text_threshold=thresholds.get("text_threshold"), redetect_every=redetect,
                            match_iou=thresholds.get("match_iou") or 0.5)
    run = track_video(tracker, src, prompts, out=job.folder, overlay=overlay, discover=discover,
                      on_record=lambda record, n: job.progress(n))
    job.warnings = list(src.problems)
    base = f"/v1/jobs/{job.job_id}"
    files = {name: f"{base}/files/{name}" for name in run.written if name != "masks"}
    files["masks.zip"] = f"{base}/files/masks.zip"
    return {"frames": run.frames, "objects": sorted(run.objects),
            "categories": {str(k): v for k, v in run.categories.items()},
            "files": files, "masks": f"{base}/masks/{{frame}}.png"}


@router.api_route("/jobs/{job_id}", methods=["POST", "PUT", "PATCH", "OPTIONS", "HEAD"], include_in_schema=False)
async def job_other_methods(job_id: str):
    # two routes serve this path (GET, DELETE): a 405 must name both, not only the first route's
    return JSONResponse({"error": "Method Not Allowed"}, status_code=405, headers={"Allow": "DELETE, GET"})


@router.get("/jobs/{job_id}", summary="A job's status, progress and results")
async def get_job(job_id: str, request: Request):
    return job_manager(request.app).get(job_id).to_json()


@router.delete("/jobs/{job_id}", summary="Cancel a job (a running one stops at its next frame)")
async def cancel_job(job_id: str, request: Request):
    return job_manager(request.app).cancel(job_id).to_json()


def _done_job(request: Request, job_id: str):
    job = job_manager(request.app).get(job_id)
    if job.status != "done":
        raise UnknownJobError(f"job '{job_id}' is {job.status}; its results exist once it is done")
    return job


@router.get("/jobs/{job_id}/files/{name}", summary="A result file of a finished tracking job",
            response_class=Response, responses={200: {"content": {t: {} for t in dict.fromkeys(FILES.values())}}})
async def job_file(job_id: str, name: str, request: Request):
    if name not in FILES:
        raise UnknownJobError(f"no result '{name}'; a tracking job has {', '.join(FILES)}")
    job = _done_job(request, job_id)
    if name == "masks.zip":
        path = await run_in_threadpool(_zip_masks, job.folder)
    else:
        path = job.folder / name
    if not path.exists():
        raise UnknownJobError(f"job '{job_id}' has no {name} (overlay: false skips overlay.mp4)")
    return FileResponse(path, media_type=FILES[name], filename=name)


def _zip_masks(folder: Path) -> Path:
    out = folder / "masks.zip"
    if not out.exists():
        tmp = folder / ".masks.zip.tmp"
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for p in sorted((folder / "masks").glob("*.png")):
                z.write(p, f"masks/{p.name}")
        tmp.replace(out)
    return out


@router.get("/jobs/{job_id}/masks/{frame}.png", summary="Frame n's mask of a finished job (DAVIS indexed PNG)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def job_mask(job_id: str, frame: str, request: Request):
    n = check_frame_number(frame)
    job = _done_job(request, job_id)
    path = job.folder / "masks" / f"{n:05d}.png"
    if not path.exists():
        raise UnknownJobError(f"job '{job_id}' did not track frame {n}")
    return FileResponse(path, media_type="image/png")


__all__ = ["router", "video_store", "job_manager", "UnknownVideoError"]
