"""The two post-processing kernels SAM 3 video uses, for every device, without the hub.

transformers' ``Sam3VideoModel`` gets mask NMS (``generic_nms``) and connected components
(``cc_2d``, for hole filling and sprinkle removal) from the hub package ``kernels-community/cv-utils``.
Offline, on a CPU, or where the kernel does not verify, it only warns and skips both: duplicate
detections are kept and masks keep their specks, so results differ from a connected GPU run.
:func:`install` puts these implementations in their place (unless the hub kernel already loaded):

- ``generic_nms(ious, probs, iou_threshold, use_iou_matrix=True)``: greedy NMS on a precomputed IoU
  matrix: highest score first, every later candidate with IoU > ``iou_threshold`` to a kept one is
  dropped; returns the kept indices (into ``probs``) in score order.
- ``cc_2d(mask, get_counts=True)``: 8-connected components of an N x 1 x H x W uint8 mask; returns
  int32 labels (0 = background, components numbered from 1 per mask) and, per pixel, the area of
  its component (0 on background).

``tests/test_sam3_kernels.py`` checks them against torchvision's NMS on box IoUs and OpenCV's
connected components.
"""

from __future__ import annotations

import numpy as np
import torch


class CvUtils:
    """Drop-in for the ``kernels-community/cv-utils`` module (the two functions SAM 3 calls)."""

    @staticmethod
    def generic_nms(ious: torch.Tensor, probs: torch.Tensor, iou_threshold: float, use_iou_matrix: bool = True) -> torch.Tensor:
        if not use_iou_matrix:
            raise NotImplementedError("vfm's generic_nms takes a precomputed IoU matrix (use_iou_matrix=True)")
        n = int(probs.numel())
        order = torch.argsort(probs.detach().float().cpu(), descending=True, stable=True)
        over = (ious.detach().float().cpu() > iou_threshold).numpy()
        removed = np.zeros(n, dtype=bool)
        keep = []
        for i in order.tolist():
            if removed[i]:
                continue
            keep.append(i)
            removed |= over[i]
        return torch.tensor(keep, dtype=torch.long, device=probs.device)

    @staticmethod
    def cc_2d(mask: torch.Tensor, get_counts: bool = True) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        from scipy import ndimage

        m = mask.detach().cpu().numpy().astype(bool)
        labels = np.zeros(m.shape, dtype=np.int32)
        counts = np.zeros(m.shape, dtype=np.int32)
        eight = np.ones((3, 3), dtype=bool)
        for idx in np.ndindex(*m.shape[:-2]):
            lab, n = ndimage.label(m[idx], structure=eight)
            labels[idx] = lab
            if get_counts and n:
                area = np.bincount(lab.ravel()).astype(np.int32)
                area[0] = 0
                counts[idx] = area[lab]
        labels_t = torch.from_numpy(labels).to(mask.device)
        if not get_counts:
            return labels_t
        return labels_t, torch.from_numpy(counts).to(mask.device)


def install() -> bool:
    """Give transformers' SAM 3 video post-processing vfm's kernels; False if the hub kernel is loaded already."""
    from transformers.models.sam3_video import modeling_sam3_video as m

    if m.cv_utils_kernel not in (None, False) and not isinstance(m.cv_utils_kernel, CvUtils):
        return False
    m.cv_utils_kernel = CvUtils()
    return True
