"""vfm's stand-ins for SAM 3's hub kernels, against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vfm.models.sam3_kernels import CvUtils


@pytest.mark.parametrize("seed", range(5))
def test_generic_nms_equals_torchvision_nms(seed):
    from torchvision.ops import box_iou, nms

    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(60, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(60, 2, generator=g) * 40], dim=1)
    scores = torch.rand(60, generator=g)
    for thr in (0.1, 0.3, 0.7):
        ours = CvUtils.generic_nms(box_iou(boxes, boxes), scores, thr, use_iou_matrix=True)
        ref = nms(boxes, scores, thr)
        assert ours.tolist() == ref.tolist()


def test_cc_2d_equals_opencv_eight_connectivity():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 1, 37, 50)) > 0.55).astype(np.uint8)
    masks[2] = 0  # an empty mask
    labels, counts = CvUtils.cc_2d(torch.from_numpy(masks), get_counts=True)
    assert labels.dtype == torch.int32 and counts.shape == masks.shape
    for i in range(3):
        n, ref = cv2.connectedComponents(masks[i, 0], connectivity=8)
        ours = labels[i, 0].numpy()
        assert ours.max() == n - 1
        # the same partition (numbering may differ): a bijection between labels
        pairs = set(zip(ours.ravel().tolist(), ref.ravel().tolist()))
        assert len(pairs) == n
        area = np.bincount(ref.ravel())
        expected = np.where(masks[i, 0] > 0, area[ref], 0)
        np.testing.assert_array_equal(counts[i, 0].numpy(), expected)


def test_diagonal_pixels_are_one_component():
    m = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    m[0, 0, 0, 0] = m[0, 0, 1, 1] = m[0, 0, 2, 2] = 1
    labels, counts = CvUtils.cc_2d(m)
    assert labels.max() == 1 and counts[0, 0, 2, 2] == 3


def test_install_replaces_the_missing_hub_kernel():
    from transformers.models.sam3_video import modeling_sam3_video as m

    from vfm.models.sam3_kernels import install

    old = m.cv_utils_kernel
    try:
        m.cv_utils_kernel = False  # transformers' "tried and failed" state
        assert install() and isinstance(m.cv_utils_kernel, CvUtils)
        scores = torch.tensor([0.9, 0.8, 0.7])
        masks = torch.zeros(3, 8, 8)
        masks[0, :4] = masks[1, :4] = 1.0  # 1 duplicates 0
        masks[2, 5:] = 1.0
        keep = m.nms_masks(scores, masks, prob_threshold=0.5, iou_threshold=0.5)
        assert keep.tolist() == [True, False, True]
        holey = torch.full((1, 1, 16, 16), 5.0)
        holey[0, 0, 7, 7] = -5.0  # a one-pixel hole
        holey[0, 0, 0, 15] = -5.0
        filled = m.fill_holes_in_mask_scores(holey, max_area=4)
        assert (filled > 0).all()
    finally:
        m.cv_utils_kernel = old
