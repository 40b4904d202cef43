"""Contact sheets: a grid of search hits or of a duplicate cluster, written as one PNG to look at.

Each cell is a thumbnail (the whole image for image hits; the object's box with a margin for
object hits, its mask outlined in yellow and its box in red) with the rank and score under it.
An image that can no longer be read gets a grey cell saying so instead of failing the sheet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CELL = 192
CAPTION = 28
COLUMNS = 5


def _thumb(hit: dict[str, Any]) -> Image.Image:
    from vfm.errors import VfmError
    from vfm.io.image import load_image

    try:
        pixels = load_image(hit["path"]).pixels
    except VfmError:
        cell = Image.new("RGB", (CELL, CELL), (90, 90, 90))
        ImageDraw.Draw(cell).text((8, CELL // 2 - 6), "unreadable", fill=(255, 255, 255))
        return cell
    if hit.get("kind") == "object" and hit.get("bbox"):
        h, w = pixels.shape[:2]
        x, y, bw, bh = hit["bbox"]
        if hit.get("segmentation"):
            from vfm.results.rle import decode_rle

            mask = decode_rle(hit["segmentation"])
            if mask.shape == (h, w):
                edge = mask & ~_erode(mask)
                pixels = pixels.copy()
                pixels[edge] = (255, 221, 0)
        margin = 0.15 * max(bw, bh) + 4
        x0, y0 = int(max(0, x - margin)), int(max(0, y - margin))
        x1, y1 = int(min(w, x + bw + margin)), int(min(h, y + bh + margin))
        img = Image.fromarray(pixels[y0:y1, x0:x1])
        ImageDraw.Draw(img).rectangle([x - x0, y - y0, x - x0 + bw - 1, y - y0 + bh - 1], outline=(230, 30, 30),
                                      width=max(1, int(max(img.size) / 96)))
    else:
        img = Image.fromarray(pixels)
    scale = (CELL - 8) / max(img.size)  # fit the cell with a margin: shrink large images, enlarge small crops (pixels kept sharp)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST)


def _erode(mask: np.ndarray) -> np.ndarray:
    m = np.pad(mask, 1)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


def write_sheet(hits: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """One PNG grid of ``hits`` (each with path, kind, optional bbox/segmentation, rank, score)."""
    from vfm.formats._atomic import atomic_file

    cols = max(1, min(COLUMNS, len(hits)))
    rows = max(1, -(-len(hits) // cols))
    top = CAPTION if title else 0
    sheet = Image.new("RGB", (cols * CELL, top + rows * (CELL + CAPTION)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 8), title[:120], fill=(0, 0, 0))
    for i, hit in enumerate(hits):
        r, c = divmod(i, cols)
        x, y = c * CELL, top + r * (CELL + CAPTION)
        thumb = _thumb(hit)
        sheet.paste(thumb, (x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2))
        label = f"#{hit.get('rank', i + 1)} {hit.get('score', 0):.3f}"
        if hit.get("category"):
            label += f" {hit['category']}"
        draw.text((x + 4, y + CELL + 2), label[:30], fill=(0, 0, 0))
        draw.text((x + 4, y + CELL + 14), str(hit.get("file_name", ""))[-30:], fill=(80, 80, 80))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, mode="wb") as fh:
        sheet.save(fh, format="PNG")
    return path
