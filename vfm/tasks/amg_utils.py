"""Building blocks of SAM's automatic mask generator that torchvision does not provide.

Each function reproduces the semantics of Meta's ``segment_anything/utils/amg.py``: the point
grids, the crop boxes, the stability score on logits, the crop-edge filter and small hole/island
removal. Boxes of masks (the reference's *inclusive* convention, x1 = last column) and NMS come
from ``torchvision.ops`` (``masks_to_boxes``, ``nms``), as in the reference.
"""

from __future__ import annotations

import math
from itertools import product
from typing import Sequence

import numpy as np
import torch


# ---------------------------------------------------------------------------------- grids, crops
def build_point_grid(n_per_side: int) -> np.ndarray:
    """``n_per_side``² points evenly spaced in [0, 1]², row-major (x fastest), cell centres."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """One grid per crop layer; layer i has ``int(n_per_side / scale_per_layer**i)`` points per side."""
    return [build_point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def generate_crop_boxes(im_size: tuple[int, int], n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """The full image, then (2**i)² overlapping crops per layer i ≥ 1; XYXY boxes and their layers."""
    crop_boxes, layer_idxs = [], []
    im_h, im_w = im_size
    short_side = min(im_h, im_w)
    crop_boxes.append([0, 0, im_w, im_h])
    layer_idxs.append(0)

    def crop_len(orig_len: int, n_crops: int, overlap: int) -> int:
        return int(math.ceil((overlap * (n_crops - 1) + orig_len) / n_crops))

    for i_layer in range(n_layers):
        n_crops_per_side = 2 ** (i_layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / n_crops_per_side))
        crop_w = crop_len(im_w, n_crops_per_side, overlap)
        crop_h = crop_len(im_h, n_crops_per_side, overlap)
        xs0 = [int((crop_w - overlap) * i) for i in range(n_crops_per_side)]
        ys0 = [int((crop_h - overlap) * i) for i in range(n_crops_per_side)]
        for x0, y0 in product(xs0, ys0):
            crop_boxes.append([x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)])
            layer_idxs.append(i_layer + 1)
    return crop_boxes, layer_idxs


# ---------------------------------------------------------------------------------- masks, boxes
def stability_counts(logits: torch.Tensor, mask_threshold: float, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel counts above ``threshold + offset`` (intersection) and ``threshold - offset`` (union)."""
    inter = (logits > (mask_threshold + offset)).flatten(-2).sum(-1, dtype=torch.int64)
    union = (logits > (mask_threshold - offset)).flatten(-2).sum(-1, dtype=torch.int64)
    return inter, union


def stability_score(logits: torch.Tensor, mask_threshold: float, offset: float) -> torch.Tensor:
    """IoU of the masks thresholded at ``threshold ± offset`` (the reference's definition)."""
    inter, union = stability_counts(logits, mask_threshold, offset)
    return inter / union


def is_box_near_crop_edge(boxes: torch.Tensor, crop_box: Sequence[int], orig_box: Sequence[int], atol: float = 20.0) -> torch.Tensor:
    """True for (crop-frame, inclusive) boxes near a crop edge that is not also an image edge."""
    crop = torch.as_tensor(crop_box, dtype=torch.float)
    orig = torch.as_tensor(orig_box, dtype=torch.float)
    x0, y0 = crop_box[0], crop_box[1]
    b = (boxes + torch.tensor([[x0, y0, x0, y0]])).float()
    near_crop = torch.isclose(b, crop[None, :], atol=atol, rtol=0)
    near_image = torch.isclose(b, orig[None, :], atol=atol, rtol=0)
    return torch.any(near_crop & ~near_image, dim=1)


def xyxy_to_xywh_list(box: Sequence[float]) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


# ---------------------------------------------------------------------------------- small regions
def _label_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a uint8 mask: (n_labels incl. background, labels, sizes[1:])."""
    try:
        import cv2
    except ImportError:  # scipy labels 8-connected components in the same raster order
        cv2 = None
    if cv2 is not None:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, 8)
        return n, labels, stats[:, -1][1:]
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=int))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return n + 1, labels, sizes


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) smaller than ``area_thresh``.

    Returns the mask and whether it changed. Same rule as the reference, including keeping the
    largest island when every island is small.
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    correct_holes = mode == "holes"
    working = (correct_holes ^ mask).astype(np.uint8)
    n_labels, regions, sizes = _label_components(working)
    small = [i + 1 for i, s in enumerate(sizes) if s < area_thresh]
    if not small:
        return mask, False
    fill = [0] + small
    if not correct_holes:
        fill = [i for i in range(n_labels) if i not in fill]
        if not fill:
            fill = [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True
