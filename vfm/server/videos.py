"""Uploaded videos on disk, and their frames as JPEGs for the web page's scrubber.

A video's id is a hash of its bytes (the same file always gets the same id). Each lives in
``ROOT/<id>/``: the file as uploaded, ``info.json``, and ``frames/00000.jpg ...`` decoded by a
background thread after the upload (frame requests wait for the frame they ask for). Tracking reads
the uploaded file itself, not the JPEGs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vfm.errors import PromptError, VfmError
from vfm.video.reader import VIDEO_EXTENSIONS, open_video


class UnknownVideoError(VfmError):
    http_status = 404


@dataclass
class StoredVideo:
    video_id: str
    path: Path
    width: int
    height: int
    frames: int
    fps: float
    file_name: str | None
    extracted: int = 0
    extract_done: bool = False
    extract_error: str | None = None
    cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def info(self) -> dict:
        out = {"video_id": self.video_id, "width": self.width, "height": self.height, "frames": self.frames,
               "fps": round(self.fps, 6), "duration": round(self.frames / self.fps, 6) if self.fps else None,
               "frames_ready": self.extracted}
        if self.file_name:
            out["file_name"] = self.file_name
        return out


class VideoStore:
    def __init__(self, root: str | None, max_pixels: int | None = None):
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="vfm-videos-")) if root is None else Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_pixels = max_pixels
        self._videos: dict[str, StoredVideo] = {}
        self._lock = threading.Lock()

    def add(self, upload: Path, file_name: str | None) -> StoredVideo:
        """Take an uploaded file (moved into the store), check it decodes, start frame extraction."""
        digest = hashlib.sha256()
        with open(upload, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        video_id = digest.hexdigest()[:16]
        with self._lock:
            known = self._videos.get(video_id)
        if known is not None:
            upload.unlink(missing_ok=True)
            return known
        suffix = Path(file_name or "").suffix.lower()
        folder = self.root / video_id
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"video{suffix if suffix in VIDEO_EXTENSIONS else ''}"
        shutil.move(str(upload), dest)
        try:
            src = open_video(str(dest), max_pixels=self.max_pixels)
        except (VfmError, OSError):
            shutil.rmtree(folder, ignore_errors=True)
            raise
        video = StoredVideo(video_id, dest, src.width, src.height, src.frame_count or 0, src.fps, file_name)
        (folder / "info.json").write_text(json.dumps(video.info()))
        with self._lock:
            self._videos[video_id] = video
        threading.Thread(target=self._extract, args=(video,), daemon=True, name=f"vfm-frames-{video_id}").start()
        return video

    def get(self, video_id: str) -> StoredVideo:
        with self._lock:
            video = self._videos.get(video_id)
        if video is None:
            raise UnknownVideoError(f"no video with id '{video_id}'; upload it first with POST /v1/videos")
        return video

    def frame(self, video_id: str, index: int, timeout: float = 60.0) -> Path:
        """The JPEG of frame ``index``, waiting for the extraction to reach it."""
        video = self.get(video_id)
        if index < 0 or (video.frames and index >= video.frames):
            raise UnknownVideoError(f"video '{video_id}' has frames 0..{video.frames - 1}, not {index}")
        with video.cond:
            video.cond.wait_for(lambda: video.extracted > index or video.extract_done, timeout=timeout)
        path = video.folder / "frames" / f"{index:05d}.jpg"
        if not path.exists():
            reason = video.extract_error or "the video ends before it"
            raise UnknownVideoError(f"frame {index} of video '{video_id}' is not available ({reason})")
        return path

    def _extract(self, video: StoredVideo) -> None:
        from PIL import Image

        out = video.folder / "frames"
        out.mkdir(exist_ok=True)
        try:
            src = open_video(str(video.path), max_pixels=self.max_pixels)
            for frame in src:
                tmp = out / f".{frame.index:05d}.jpg"
                Image.fromarray(frame.pixels).save(tmp, quality=90)
                tmp.replace(out / f"{frame.index:05d}.jpg")
                with video.cond:
                    video.extracted = frame.index + 1
                    video.cond.notify_all()
            if src.problems:
                video.extract_error = src.problems[0]
        except Exception as exc:  # noqa: BLE001 - a frame request reports it
            video.extract_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finally:
            with video.cond:
                video.extract_done = True
                video.cond.notify_all()

    def close(self) -> None:
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)


def check_frame_number(text: str) -> int:
    if not text.isdigit():
        raise PromptError(f"frame '{text}' must be a whole number >= 0")
    return int(text)
