"""COCO run-length encoding of binary masks, through pycocotools.

A mask is an HxW boolean array in original-image pixels. An RLE is the COCO *compressed* form,
``{"size": [H, W], "counts": "<ascii>"}``, readable by ``pycocotools.mask.decode``.
Boxes derived from masks use pixel edges: a mask covering columns 3..5 has x0=3, x1=6 (XYXY),
exactly ``pycocotools.mask.toBbox`` in XYWH.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode an HxW boolean mask as a compressed COCO RLE with ``counts`` as a str."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise ValueError(f"encode_rle expects an HxW mask, got shape {m.shape}")
    rle = mask_utils.encode(m)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_rles(masks: np.ndarray) -> list[dict[str, Any]]:
    """Encode NxHxW boolean masks as a list of compressed COCO RLEs (one pycocotools call)."""
    m = np.asarray(masks)
    # bool and uint8 share a layout: a view keeps the strides (column-major masks encode without a copy)
    m = m.view(np.uint8) if m.dtype == bool else m.astype(np.uint8, copy=False)
    if m.ndim != 3:
        raise ValueError(f"encode_rles expects NxHxW masks, got shape {m.shape}")
    if m.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0)))
    return [{"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")} for r in rles]


def _to_coco(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        h, w = rle["size"]
        return mask_utils.frPyObjects(rle, h, w)
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed or uncompressed) to an HxW boolean mask."""
    return mask_utils.decode(_to_coco(rle)).astype(bool)


def rle_area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of an RLE."""
    return int(mask_utils.area(_to_coco(rle)))


def rle_to_xywh(rle: dict[str, Any]) -> list[float]:
    """Tight box of an RLE as COCO XYWH (pixel edges), [0, 0, 0, 0] when empty."""
    return [float(v) for v in mask_utils.toBbox(_to_coco(rle))]


def masks_to_xyxy(masks: np.ndarray) -> np.ndarray:
    """Tight boxes of NxHxW boolean masks as Nx4 float32 XYXY (pixel edges); empty masks give zeros."""
    m = np.asarray(masks, dtype=bool)
    n = m.shape[0]
    boxes = np.zeros((n, 4), dtype=np.float32)
    if n == 0:
        return boxes
    rows = m.any(axis=2)
    cols = m.any(axis=1)
    has = rows.any(axis=1)
    h, w = m.shape[1:]
    y0 = np.argmax(rows, axis=1)
    y1 = h - np.argmax(rows[:, ::-1], axis=1)
    x0 = np.argmax(cols, axis=1)
    x1 = w - np.argmax(cols[:, ::-1], axis=1)
    boxes[:] = np.stack([x0, y0, x1, y1], axis=1)
    boxes[~has] = 0
    return boxes


def rles_to_xyxy(rles: list[dict[str, Any]]) -> np.ndarray:
    """Tight boxes of RLEs as Nx4 float32 XYXY (pixel edges)."""
    if not rles:
        return np.zeros((0, 4), dtype=np.float32)
    xywh = mask_utils.toBbox([_to_coco(r) for r in rles]).reshape(-1, 4)
    xyxy = xywh.copy()
    xyxy[:, 2:] += xyxy[:, :2]
    return xyxy.astype(np.float32)
