"""Parity with Meta's SamAutomaticMaskGenerator on the same weights, non-square image, with/without crops.

Same number of masks (±2%) and ≥ 95% of the reference's masks matched one-to-one (Hungarian matching
on mask IoU) by a vfm mask with IoU ≥ 0.9; stability scores and predicted IoUs of matched pairs agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from conftest import make_image
from test_everything import build_everything_sam
from vfm.tasks.everything import MaskGenerator

ZERO = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def parity_segmenter(tiny_sam_dir, tmp_path_factory):
    from vfm.tasks.segment import Segmenter

    d = build_everything_sam(tiny_sam_dir, tmp_path_factory.mktemp("models") / "parity-sam")
    return Segmenter.load(str(d), device="cpu", precision="fp32")


def _coco(rle):
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def compare(seg, image, **kw):
    from vfm.testing.meta_sam import meta_generator

    ref = meta_generator(seg.model.model, output_mode="coco_rle", **kw).generate(image)
    got = MaskGenerator(seg, **kw).generate(image)
    n_ref, n_got = len(ref), len(got)
    assert abs(n_got - n_ref) <= max(0.02 * n_ref, 0), (n_got, n_ref)
    if n_ref == 0:
        return n_ref, n_got, 1.0
    iou = mask_utils.iou([_coco(r) for r in got.rles], [_coco(a["segmentation"]) for a in ref], [0] * n_ref)
    rows, cols = linear_sum_assignment(-iou)
    ok = iou[rows, cols] >= 0.9
    frac = ok.sum() / n_ref
    assert frac >= 0.95, frac
    r_stab = np.array([a["stability_score"] for a in ref])[cols[ok]]
    r_iou = np.array([a["predicted_iou"] for a in ref])[cols[ok]]
    np.testing.assert_allclose(got.data["stability_score"][rows[ok]], r_stab, atol=0.02)
    np.testing.assert_allclose(got.scores[rows[ok]], r_iou, atol=1e-3)
    return n_ref, n_got, frac


@pytest.mark.slow
@pytest.mark.parametrize("kw", [
    dict(points_per_side=8, box_nms_thresh=1.0, **ZERO),               # every mask, nothing suppressed
    dict(points_per_side=8, **ZERO),                                   # all thresholds 0, with box NMS
    dict(points_per_side=8, pred_iou_thresh=1.5, stability_score_thresh=0.3, box_nms_thresh=1.0, min_mask_region_area=20),
    dict(points_per_side=8),                                           # the reference defaults
], ids=["no-nms", "zero-thresholds", "filters+small-regions", "defaults"])
def test_parity_without_crops(parity_segmenter, kw):
    n_ref, n_got, frac = compare(parity_segmenter, make_image(120, 200), **kw)
    if "box_nms_thresh" in kw and kw["box_nms_thresh"] == 1.0 and kw.get("pred_iou_thresh") == 0.0:
        assert n_ref == 8 * 8 * 3


@pytest.mark.slow
@pytest.mark.parametrize("kw", [
    dict(points_per_side=6, crop_n_layers=1, box_nms_thresh=1.0, crop_nms_thresh=1.0, **ZERO),
    dict(points_per_side=6, crop_n_layers=1, **ZERO),
], ids=["crops-no-nms", "crops-zero-thresholds"])
def test_parity_with_a_crop_layer(parity_segmenter, kw):
    n_ref, n_got, frac = compare(parity_segmenter, make_image(120, 200), **kw)
    assert n_ref >= 1
