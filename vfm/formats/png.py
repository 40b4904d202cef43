"""PNG outputs a person can look at: one binary PNG per mask and a colored overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from vfm.results.instances import Instances


def palette(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct, saturated RGB colors (uint8), stable for a given seed."""
    golden = 0.618033988749895
    hues = (seed * 0.13 + np.arange(n) * golden) % 1.0
    out = np.zeros((n, 3), dtype=np.uint8)
    for i, h in enumerate(hues):
        out[i] = _hsv_to_rgb(h, 0.75, 0.95)
    return out


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` that touch a pixel outside it (4-neighbourhood)."""
    m = mask
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def draw_overlay(
    image: np.ndarray,
    instances: Instances,
    *,
    alpha: float = 0.5,
    labels: Sequence[str] | None = None,
    draw_boxes: bool | None = None,
    points: Sequence[tuple[float, float, int]] | None = None,
    prompt_boxes: Sequence[Sequence[float]] | None = None,
) -> Image.Image:
    """Masks as translucent colored areas with outlines (largest first), boxes, labels and prompts.

    ``labels`` defaults to "name score" per instance when class names exist. ``draw_boxes`` defaults
    to True for box-only results. ``points`` (x, y, label: green positive, red negative) and
    ``prompt_boxes`` (XYXY, dashed white over black) are the prompts the user gave.
    """
    canvas = np.asarray(image, dtype=np.float32).copy()
    colors = palette(max(len(instances), 1))
    if instances.has_masks:
        order = np.argsort(-instances.areas)
        for i in order:
            m = instances.mask(int(i))
            c = colors[i].astype(np.float32)
            canvas[m] = canvas[m] * (1 - alpha) + c * alpha
            canvas[_outline(m)] = c
    out = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    if draw_boxes is None:
        draw_boxes = not instances.has_masks
    if labels is None and instances.class_names is not None:
        labels = [f"{n} {s:.2f}" for n, s in zip(instances.class_names, instances.scores)]
    for i in range(len(instances)):
        x0, y0, x1, y1 = (float(v) for v in instances.xyxy[i])
        color = tuple(int(v) for v in colors[i])
        if draw_boxes:
            draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=color, width=2)
        if labels is not None:
            text = labels[i]
            tx, ty = x0 + 2, max(0.0, y0 - 12)
            bbox = draw.textbbox((tx, ty), text)
            draw.rectangle(bbox, fill=color)
            draw.text((tx, ty), text, fill=(0, 0, 0))
    for box in prompt_boxes or []:
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0), width=3)
        _dashed_rectangle(draw, (x0, y0, x1, y1), fill=(255, 255, 255))
    for x, y, label in points or []:
        r = 5
        fill = (40, 220, 60) if label == 1 else (230, 40, 40)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=(255, 255, 255), width=2)
    return out


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], *, fill, dash: float = 6.0) -> None:
    x0, y0, x1, y1 = box
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(bx - ax), abs(by - ay))
        steps = max(int(length // dash), 1)
        for k in range(0, steps, 2):
            t0, t1 = k / steps, min((k + 1) / steps, 1.0)
            draw.line([ax + (bx - ax) * t0, ay + (by - ay) * t0, ax + (bx - ax) * t1, ay + (by - ay) * t1], fill=fill, width=1)


def write_mask_pngs(instances: Instances, out_dir: str | Path, prefix: str = "mask") -> list[Path]:
    """Write each mask as an 8-bit PNG (0 background, 255 foreground); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(instances)):
        path = out / f"{prefix}_{i:03d}.png"
        Image.fromarray(instances.mask(i).astype(np.uint8) * 255).save(path)
        paths.append(path)
    return paths
