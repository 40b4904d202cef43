"""One labeled image's objects as the shapes the labeling tools draw: a box, and a polygon per mask.

``image_shapes(result)`` turns the store's result of an image into ``Shape``s: the box (COCO XYWH ->
x0, y0, x1, y1 in pixel-edge coordinates), the class name, the score, and, where the object has a
mask, the polygon of its largest outer contour (vfm.formats.yolo.mask_polygon) and the mask itself.
LabelMe, Pascal VOC and CVAT writers read these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np


@dataclass
class Shape:
    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    polygon: np.ndarray | None = None  # K x 2 (x, y)
    mask: np.ndarray | None = None  # H x W bool


def image_shapes(result: str, *, masks: bool = True) -> list[Shape]:
    from vfm.formats.yolo import mask_polygon
    from vfm.results.rle import decode_rle

    out = []
    for item in json.loads(result).get("annotations", []):
        x, y, w, h = item["bbox"]
        shape = Shape(item["category"], (float(x), float(y), float(x + w), float(y + h)), float(item["score"]))
        if masks and "segmentation" in item:
            shape.mask = decode_rle(item["segmentation"])
            shape.polygon = mask_polygon(shape.mask)
        out.append(shape)
    return out
