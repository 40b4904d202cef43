"""A labeled dataset in memory, read from a file format, that every dataset writer takes.

``Dataset.rows()`` yields what the labeling engine's store yields, ``(id, file_name, "done", width,
height, result JSON, None)`` with ``result = {"annotations": [{"category", "bbox", "area", "score",
"segmentation"?}]}`` (COCO XYWH boxes in pixel-edge coordinates, compressed RLE masks), so
``vfm convert`` writes with the same code as ``vfm label``. COCO is the hub: every reader gives this,
every writer reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from vfm.errors import VfmError


class DatasetError(VfmError):
    """A dataset given to convert / --boxes-from is malformed: missing files, bad ids, boxes outside the image."""

    http_status = 422


@dataclass
class Dataset:
    categories: list[str]
    image_root: str  # a row's file_name is relative to it
    images: list[tuple[str, int, int, list[dict]]] = field(default_factory=list)

    def rows(self, status: str | None = "done"):
        for i, (name, w, h, anns) in enumerate(self.images, start=1):
            yield i, name, "done", w, h, json.dumps({"annotations": anns}), None

    def category(self, name: str) -> str:
        if name not in self.categories:
            self.categories.append(name)
        return name


def box_item(category: str, x0: float, y0: float, x1: float, y1: float, width: int, height: int, where: str,
             score: float = 1.0, mask: np.ndarray | None = None) -> dict:
    """One annotation; DatasetError when the box is empty or outside the image (1 px of slack for rounding)."""
    if not (x1 > x0 and y1 > y0):
        raise DatasetError(f"{where}: box {x0:g},{y0:g},{x1:g},{y1:g} is empty (x1 <= x0 or y1 <= y0)")
    if x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1:
        raise DatasetError(f"{where}: box {x0:g},{y0:g},{x1:g},{y1:g} lies outside the {width}x{height} image")
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
    item = {"category": category, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
            "score": float(score)}
    if mask is not None:
        from vfm.results.rle import encode_rle, rle_area

        item["segmentation"] = encode_rle(mask)
        item["area"] = float(rle_area(item["segmentation"]))
    return item


def polygon_mask(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Rasterize an (x, y) polygon in pixel-edge coordinates: pycocotools' rule, as COCO polygons are."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.frPyObjects([np.asarray(points, np.float64).ravel().tolist()], height, width)
    return mask_utils.decode(mask_utils.merge(rle)).astype(bool)


def image_size(path) -> tuple[int, int]:
    """(width, height) from the file's header (EXIF rotation applied, as vfm reads images)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if ImageOps.exif_transpose is not None and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
            return w, h
    except FileNotFoundError:
        raise DatasetError(f"image '{path}' of the dataset does not exist") from None
    except (UnidentifiedImageError, OSError):
        raise DatasetError(f"image '{path}' of the dataset is not a readable image") from None
