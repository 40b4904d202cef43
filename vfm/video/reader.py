"""Video input: a file PyAV decodes, a folder of frames or a glob, read one frame at a time.

Frames come out as RGB ``uint8`` arrays in display orientation (a file's rotation metadata is
applied, as a player does), numbered by their position in the source (0-based, before --start /
--stride select from them). Nothing is decoded ahead: memory does not grow with the video's length.
A file that stops decoding part-way ends there; what was decoded is kept and the reason is in
:attr:`VideoSource.problems`.
"""

from __future__ import annotations

import glob as globlib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from vfm.errors import ImageError, PromptError, VideoError, require

#: File extensions read as videos (anything else PyAV opens works too when named directly).
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".gif", ".flv", ".wmv"})


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: ``index`` in the source, ``time`` in seconds, ``pixels`` HxWx3 RGB uint8."""

    index: int
    time: float
    pixels: np.ndarray
    name: str  # the frame's file name in a folder, else "%05d.jpg" of its index


@dataclass
class VideoSource:
    """A video to read frame by frame; see :func:`open_video`."""

    path: str
    kind: str  # "file" or "frames"
    width: int
    height: int
    fps: float
    start: int = 0
    end: int | None = None  # exclusive
    stride: int = 1
    frame_count: int | None = None  # frames in the source (a file's is counted from its packets)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    max_pixels: int | None = None

    @property
    def stem(self) -> str:
        p = Path(self.path)
        return p.stem if self.kind == "file" else (p.name or "frames")

    def selected(self, index: int) -> bool:
        """Whether source frame ``index`` is one --start/--end/--stride keep."""
        if index < self.start or (self.end is not None and index >= self.end):
            return False
        return (index - self.start) % self.stride == 0

    def selected_count(self) -> int | None:
        """How many frames are read (None when the source's length is unknown)."""
        total = self.frame_count
        if self.end is not None:
            total = self.end if total is None else min(total, self.end)
        if total is None:
            return None
        return max(0, (total - self.start + self.stride - 1) // self.stride)

    def __iter__(self) -> Iterator[VideoFrame]:
        return self._file_frames() if self.kind == "file" else self._folder_frames()

    def _folder_frames(self) -> Iterator[VideoFrame]:
        from vfm.io.image import load_image

        for index, path in enumerate(self.files):
            if self.end is not None and index >= self.end:
                return
            if not self.selected(index):
                continue
            try:
                image = load_image(path, max_pixels=self.max_pixels)
            except ImageError as exc:
                self.problems.append(f"frame {index} ('{path.name}') could not be read, the video ends there: {exc}")
                return
            if (image.width, image.height) != (self.width, self.height):
                self.problems.append(f"frame {index} ('{path.name}') is {image.width}x{image.height}, not "
                                     f"{self.width}x{self.height} like the first frame; the video ends there")
                return
            yield VideoFrame(index, index / self.fps, image.pixels, path.name)

    def _file_frames(self) -> Iterator[VideoFrame]:
        av = require("av", "video")
        container = av.open(self.path)
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            index = -1
            first_time = None
            decoder = container.decode(stream)
            while True:
                try:
                    frame = next(decoder)
                except StopIteration:
                    return
                except (av.error.FFmpegError, ValueError) as exc:
                    self.problems.append(f"decoding stopped after frame {index} of '{self.path}': {exc}; "
                                         "the frames before it were tracked")
                    return
                index += 1
                if self.end is not None and index >= self.end:
                    return
                if not self.selected(index):
                    continue
                pixels = _display(frame)
                if pixels.shape[1::-1] != (self.width, self.height):
                    self.problems.append(f"frame {index} of '{self.path}' changes size to {pixels.shape[1]}x{pixels.shape[0]}; "
                                         "the video ends there")
                    return
                t = frame.time
                if t is None:
                    t = index / self.fps
                if first_time is None:
                    first_time = t
                yield VideoFrame(index, round(float(t - first_time), 6), pixels, f"{index:05d}.jpg")
        finally:
            container.close()


def _display(frame) -> np.ndarray:
    """A PyAV frame as RGB uint8, rotated upright as its display matrix says."""
    pixels = frame.to_ndarray(format="rgb24")
    rotation = getattr(frame, "rotation", 0) or 0
    k = int(round(rotation / 90.0)) % 4
    if k:
        pixels = np.ascontiguousarray(np.rot90(pixels, k))
    return pixels


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def open_video(source: str, *, start: int = 0, end: int | None = None, stride: int = 1, fps: float | None = None,
               max_pixels: int | None = None) -> VideoSource:
    """Open a video file, a folder of frames or a glob of frames for reading.

    ``start``/``end`` (exclusive) are source frame numbers, ``stride`` keeps every Nth frame from
    ``start``. ``fps`` sets the frame rate of a folder or glob (default 30; a file's own rate is used).
    The first frame is decoded here to learn the size; a file's frame count comes from its header,
    else from counting its packets (no decoding).

    Raises:
        VideoError: missing source, not a video, no video stream, zero frames, undecodable first frame.
        PromptError: a bad --start / --end / --stride / --fps.
    """
    from vfm.io.image import IMAGE_EXTENSIONS

    if start < 0:
        raise PromptError(f"--start {start} is negative; frames are numbered from 0")
    if end is not None and end <= start:
        raise PromptError(f"--end {end} must be after --start {start}")
    if stride < 1:
        raise PromptError(f"--stride {stride} must be at least 1")
    if fps is not None and not (fps > 0):
        raise PromptError(f"--fps {fps} must be positive")
    text = str(source)
    path = Path(text).expanduser()
    if any(ch in text for ch in "*?[") and not path.exists():
        files = sorted((Path(p) for p in globlib.glob(str(path)) if Path(p).suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
        if not files:
            raise VideoError(f"the glob '{text}' matches no image files; give a video file, a folder of frames or a glob of frames")
        return _frames_source(text, files, start, end, stride, fps, max_pixels)
    if not path.exists():
        raise VideoError(f"video '{text}' does not exist; give a video file, a folder of frames or a glob of frames")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
        if not files:
            raise VideoError(f"folder '{text}' has no image frames (jpg, png, ...); give a video file or a folder of frames")
        return _frames_source(text, files, start, end, stride, fps, max_pixels)
    return _file_source(str(path), start, end, stride, max_pixels)


def _frames_source(text, files, start, end, stride, fps, max_pixels) -> VideoSource:
    from vfm.io.image import load_image

    if start >= len(files):
        raise PromptError(f"--start {start} is past the last frame ({len(files) - 1}) of '{text}'")
    try:
        first = load_image(files[start], max_pixels=max_pixels)
    except ImageError as exc:
        raise VideoError(f"the first frame of '{text}' cannot be read: {exc}") from None
    return VideoSource(text, "frames", first.width, first.height, float(fps or 30.0), start, end, stride,
                       frame_count=len(files), files=list(files), max_pixels=max_pixels)


def _file_source(path: str, start, end, stride, max_pixels) -> VideoSource:
    av = require("av", "video")
    from vfm.io.image import _check_pixels, default_max_pixels

    try:
        container = av.open(path)
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise VideoError(f"'{path}' is not a video PyAV can read ({_short(exc)}); give an mp4, mov, mkv, webm or avi "
                         "file, a folder of frames or a glob") from None
    try:
        if not container.streams.video:
            raise VideoError(f"'{path}' has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 30.0
        first = None
        try:
            for frame in container.decode(stream):
                first = _display(frame)
                break
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoError(f"the first frame of '{path}' cannot be decoded ({_short(exc)}); the file is corrupt") from None
        if first is None:
            raise VideoError(f"'{path}' has zero frames")
        height, width = first.shape[:2]
        _check_pixels(width, height, default_max_pixels() if max_pixels is None else max_pixels, path)
    finally:
        container.close()
    count = _count_frames(path)
    if start >= count:
        raise PromptError(f"--start {start} is past the last frame ({count - 1}) of '{path}'")
    return VideoSource(path, "file", width, height, fps, start, end, stride, frame_count=count, max_pixels=max_pixels)


def _count_frames(path: str) -> int:
    """Frames in a file: its header's count, else its video packets counted (demuxed, not decoded)."""
    av = require("av", "video")
    with av.open(path) as container:
        stream = container.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        n = 0
        try:
            for packet in container.demux(stream):
                if packet.size:
                    n += 1
        except (av.error.FFmpegError, ValueError):
            pass
        return max(n, 1)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def frame_rate(fps: float) -> Fraction:
    """A frame rate as the fraction an encoder takes (29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)
