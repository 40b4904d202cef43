"""Synthetic videos with known masks: coloured shapes moving over a textured background.

Used by the tests (every input kind, J&F against ground truth) and by bench/track.py (long videos
without storing them: :func:`frames` generates frame i on demand).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = [(230, 40, 40), (40, 200, 60), (50, 80, 230), (240, 200, 30)]


def frame_and_masks(i: int, width: int, height: int, objects: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` (HxWx3 uint8) and its DAVIS-style id map (HxW uint8, 0 = background)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (96 + 40 * np.sin(xx / 7.0 + seed) * np.cos(yy / 11.0)).astype(np.float32)
    img = np.repeat(base[..., None], 3, axis=2)
    img += rng.normal(0, 4, size=img.shape).astype(np.float32)
    ids = np.zeros((height, width), np.uint8)
    for k in range(objects):
        r = max(3, min(width, height) // (6 + 2 * k))
        cx = width * (0.25 + 0.5 * ((k * 0.37 + i * 0.013 * (1 + k)) % 1.0))
        cy = height * (0.3 + 0.4 * (0.5 + 0.5 * np.sin(i * 0.05 + k * 2.0)))
        shape = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) if k % 2 == 0 else ((abs(xx - cx) <= r) & (abs(yy - cy) <= r * 0.7))
        img[shape] = COLOURS[k % len(COLOURS)]
        ids[shape] = k + 1
    return np.clip(img, 0, 255).astype(np.uint8), ids


def object_centre(ids: np.ndarray, obj: int) -> tuple[float, float]:
    ys, xs = np.nonzero(ids == obj)
    return float(xs.mean()), float(ys.mean())


def object_box(ids: np.ndarray, obj: int) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(ids == obj)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def write_video(path: str | Path, n: int, width: int, height: int, *, fps: int = 10, objects: int = 2, seed: int = 0,
                codec: str = "libx264", rotation: int | None = None) -> Path:
    """Encode ``n`` synthetic frames to ``path`` with PyAV (lossless-ish H.264 by default)."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "rgb24"
        if codec == "libx264":
            stream.options = {"crf": "1", "preset": "ultrafast"}
        if rotation is not None:  # a display matrix, as phones write: players rotate by it
            stream.set_display_rotation(rotation)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frame_and_masks(i, width, height, objects, seed)[0], format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(folder: str | Path, n: int, width: int, height: int, *, objects: int = 2, seed: int = 0,
                 masks_to: str | Path | None = None, ext: str = "png") -> Path:
    """Write frames as ``00000.png`` ... (and, with ``masks_to``, DAVIS palette PNG masks)."""
    from PIL import Image

    from vfm.video.outputs import davis_palette

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if masks_to is not None:
        Path(masks_to).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, ids = frame_and_masks(i, width, height, objects, seed)
        Image.fromarray(img).save(folder / f"{i:05d}.{ext}")
        if masks_to is not None:
            m = Image.fromarray(ids, mode="P")
            m.putpalette(davis_palette().reshape(-1).tolist())
            m.save(Path(masks_to) / f"{i:05d}.png")
    return folder
