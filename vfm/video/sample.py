"""Frames sampled uniformly over a whole video (what a chat VLM sees of it: vfm ask VIDEO --frames N).

Frame ``i`` of ``N`` is source frame ``round(i * (count - 1) / (N - 1))`` (the first and the last
included; N = 1 takes the middle frame), as LLaVA-OneVision's and Video-LLaMA's uniform sampling
does. The frames are decoded in one pass with PyAV (or read from a folder of frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfm.errors import PromptError, VideoError

from vfm.models.vlm.defaults import MAX_FRAMES


@dataclass
class Clip:
    frames: list[np.ndarray]  # HxWx3 RGB uint8
    indices: list[int]  # source frame numbers
    fps: float  # frames per second of the sampled clip (N frames over the video's duration)


def sample_indices(count: int, n: int) -> list[int]:
    if count <= n:
        return list(range(count))
    if n == 1:
        return [count // 2]
    return sorted({int(round(i * (count - 1) / (n - 1))) for i in range(n)})


def sample_frames(source: str, n: int, *, max_pixels: int | None = None) -> Clip:
    from vfm.video.reader import open_video

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FRAMES:
        raise PromptError(f"--frames {n} must be a whole number in 1..{MAX_FRAMES}")
    video = open_video(source, max_pixels=max_pixels)
    wanted = sample_indices(int(video.frame_count or 1), n)
    keep = set(wanted)
    frames, indices = [], []
    for frame in video:
        if frame.index in keep:
            frames.append(frame.pixels)
            indices.append(frame.index)
            if len(frames) == len(wanted):
                break
    if not frames:
        raise VideoError(f"no frame of '{source}' could be decoded")
    duration = max(1, int(video.frame_count or len(frames))) / (video.fps or 30.0)
    return Clip(frames, indices, len(frames) / duration)
