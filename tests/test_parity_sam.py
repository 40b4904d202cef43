"""Same weights, same masks: vfm's Segmenter against Meta's reference SamPredictor."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAM_PROMPTS, make_image, mask_iou


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from transformers import SamModel

    from vfm.tasks.segment import Segmenter
    from vfm.testing.meta_sam import meta_predictor
    from vfm.testing.tiny_models import build_sam

    d = build_sam(tmp_path_factory.mktemp("parity") / "sam", image_size=256, layers=2, seed=7)
    predictor = meta_predictor(SamModel.from_pretrained(d))
    image = make_image(150, 230, seed=3)  # non-square: exercises resize + pad + crop
    predictor.set_image(image)
    return predictor, Segmenter.load(str(d), device="cpu", precision="fp32"), image


PROMPTS = SAM_PROMPTS
iou = mask_iou


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", list(PROMPTS))
def test_masks_match_reference(pair, kind, multimask):
    predictor, seg, image = pair
    p = PROMPTS[kind]
    ref_masks, ref_scores, ref_low = predictor.predict(multimask_output=multimask, **p)
    res = seg.predict(points=p.get("point_coords"), labels=p.get("point_labels"), box=p.get("box"),
                      multimask=multimask, image=image)
    assert res.masks.shape == ref_masks.shape
    for i in range(len(ref_masks)):
        assert ref_masks[i].sum() > 0
        assert iou(ref_masks[i], res.masks[i]) >= 0.99
    np.testing.assert_allclose(res.scores, ref_scores, atol=1e-4)
    np.testing.assert_allclose(res.data["low_res_logits"], ref_low, atol=1e-3)


def test_refinement_with_previous_logits_matches_reference(pair):
    predictor, seg, image = pair
    p = PROMPTS["points"]
    _, _, ref_low = predictor.predict(multimask_output=False, **p)
    ref_masks, ref_scores, _ = predictor.predict(mask_input=ref_low, multimask_output=False, **p)
    first = seg.predict(points=p["point_coords"], labels=p["point_labels"], image=image)
    res = seg.predict(points=p["point_coords"], labels=p["point_labels"], mask_input=first.data["low_res_logits"][0], image=image)
    assert iou(ref_masks[0], res.masks[0]) >= 0.99
    np.testing.assert_allclose(res.scores, ref_scores, atol=1e-4)
