"""The run report: ``OUT/errors.jsonl`` (one line per unreadable image or video) and ``OUT/summary.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vfm.engine.video_state import VideoStore, is_video_store
from vfm.formats._atomic import atomic_file


def write_errors(store, out_dir: str | os.PathLike) -> int:
    """One line per unreadable image; in a video run, per video that failed (``error``) or was labeled
    only up to where it stopped decoding (``warning``, with the ``frames`` labeled)."""
    n = 0
    with atomic_file(Path(out_dir) / "errors.jsonl") as fh:
        for image_id, name, _s, _w, _h, _r, error in store.rows("error"):
            fh.write(json.dumps({"id": image_id, "file_name": name, "error": error}) + "\n")
            n += 1
        if is_video_store(store):
            for video_id, name, status, frames, error in VideoStore(store).rows():
                if status == "error":
                    fh.write(json.dumps({"video_id": video_id, "video": name, "error": error}) + "\n")
                elif status == "done" and error:
                    fh.write(json.dumps({"video_id": video_id, "video": name, "warning": error, "frames": frames}) + "\n")
                else:
                    continue
                n += 1
    return n


def summary(store, annotations: int | None) -> dict[str, Any]:
    doc = {
        "images": store.count(),
        "labeled": store.count("done"),
        "errors": store.count("error"),
        "pending": store.count("pending"),
        "skipped_files": int(store.get_meta("skipped") or 0),
        "annotations": annotations,
    }
    if is_video_store(store):
        videos = VideoStore(store)
        doc.update({"videos": videos.count(), "videos_labeled": videos.count("done"), "video_errors": videos.count("error"),
                    "videos_pending": videos.count("pending"),
                    "videos_truncated": sum(1 for *_, status, _f, err in videos.rows("done") if err)})
    return doc


def write_summary(doc: dict[str, Any], out_dir: str | os.PathLike) -> None:
    with atomic_file(Path(out_dir) / "summary.json") as fh:
        fh.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def summary_line(doc: dict[str, Any], out_dir: str) -> str:
    if "videos" in doc:
        errors = os.path.join(out_dir, "errors.jsonl")
        bad = doc["video_errors"] + doc["videos_truncated"]
        parts = [f"{doc['labeled']} frame(s) of {doc['videos_labeled']} video(s) labeled", f"{doc['annotations'] or 0} annotation(s)",
                 f"{doc['video_errors']} unreadable, {doc['videos_truncated']} truncated (see {errors})" if bad else "0 errors",
                 f"{doc['skipped_files']} non-video file(s) skipped"]
        return "; ".join(parts) + f" -> {out_dir}"
    parts = [f"{doc['labeled']} image(s) labeled", f"{doc['annotations'] or 0} annotation(s)",
             f"{doc['errors']} unreadable (see {os.path.join(out_dir, 'errors.jsonl')})" if doc["errors"] else "0 errors",
             f"{doc['skipped_files']} non-image file(s) skipped"]
    return "; ".join(parts) + f" -> {out_dir}"
