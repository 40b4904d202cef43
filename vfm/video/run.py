"""One tracking run, as `vfm track` and the server's tracking job both do it: the tracker over a
video, every frame's record handed to a callback and (with ``out``) written by a TrackWriter that is
finished on success and aborted on any error, so nothing is left half-written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vfm.errors import VideoError
from vfm.video.prompts import ObjectPrompt


@dataclass
class TrackRun:
    frames: int = 0
    objects: set[int] = field(default_factory=set)
    last_frame: int | None = None
    written: list[str] = field(default_factory=list)
    categories: dict[int, str] = field(default_factory=dict)


def grounded(detector, classes: list[str], prompts: list[ObjectPrompt], *, box_threshold=None, text_threshold=None,
             redetect_every: int = 0, match_iou: float = 0.5):
    """The ``discover`` callback of grounded tracking; new ids start after the prompted ones."""
    from vfm.video.grounded import GroundedPrompter

    return GroundedPrompter(detector, classes, box_threshold, text_threshold, redetect_every, match_iou,
                            first_id=max((p.object for p in prompts), default=0) + 1)


def track_video(tracker, video, prompts: list[ObjectPrompt], *, out: Path | None = None, overlay: bool = True,
                discover=None, prune: bool = True,
                on_record: Callable[[dict[str, Any], int], None] | None = None,
                on_frame: Callable[[Any, dict[str, Any]], None] | None = None, name: str | None = None) -> TrackRun:
    """Track ``video`` (a VideoSource); ``on_record(record, frames_done)`` after every frame, and
    ``on_frame(tracked_frame, record)`` with the frame's pixels kept (for writing the frame out).
    ``name`` is the folder ytvis.json's file names start with (default: the video's stem)."""
    from vfm.video.outputs import TrackWriter, frame_record

    # object id -> class name, filled while tracking: by grounded discovery, or SAM 3's text prompts
    categories = getattr(tracker, "categories", None)
    run = TrackRun(categories=discover.categories if discover is not None else categories if categories is not None else {})
    writer = None
    if out is not None:
        writer = TrackWriter(out, width=video.width, height=video.height, fps=video.fps, video_name=name or video.stem,
                             categories=run.categories, overlay=overlay)
    try:
        keep_pixels = (writer is not None and overlay) or on_frame is not None
        for frame in tracker.track(video, prompts, prune=prune, keep_pixels=keep_pixels, discover=discover):
            record = writer.write(frame) if writer is not None else frame_record(frame)
            if on_frame is not None:
                on_frame(frame, record)
            run.frames += 1
            run.last_frame = frame.index
            run.objects.update(o["id"] for o in record["objects"])
            if on_record is not None:
                on_record(record, run.frames)
        if run.frames == 0:
            raise VideoError(f"no frames of '{video.path}' were read (check --start/--end); nothing was written")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        run.written = writer.finish()
    return run
