"""Promptable segmentation through one Segmenter for SAM, SAM-HQ and SAM 2."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vfm.errors import PromptError
from vfm.tasks.prompts import Prompt, scribble_to_points
from vfm.tasks.segment import EmbeddingCache, Segmenter

FAMILIES = ["tiny_sam_dir", "tiny_sam_hq_dir", "tiny_sam2_dir"]


@pytest.fixture(scope="module", params=FAMILIES)
def seg(request):
    d = request.getfixturevalue(request.param)
    return Segmenter.load(str(d), device="cpu", precision="fp32")


def test_each_family_answers_every_prompt_kind(seg, image_array):
    seg.set_image(image_array)
    h, w = image_array.shape[:2]
    one = seg.predict(points=[(50, 40)], labels=[1])
    assert len(one) == 1 and one.masks.shape == (1, h, w) and one.image_size == (h, w)
    three = seg.predict(points=[(50, 40), (120, 90)], labels=[1, 0], multimask=True)
    assert len(three) == 3 and three.data["mask_index"].tolist() == [0, 1, 2]
    box = seg.predict(box=(10, 10, 150, 100))
    assert box.prompts[0] == {"box": [10.0, 10.0, 150.0, 100.0]}
    refined = seg.predict(points=[(50, 40)], mask_input=one.data["low_res_logits"][0])
    assert refined.prompts[0]["mask_input"] is True
    from_mask = seg.predict(mask_input=one.masks[0])
    assert len(from_mask) == 1


def test_batched_equals_one_by_one(seg, image_array):
    prompts = [
        Prompt(points=[(50, 40)]),
        Prompt(points=[(60, 50), (100, 80)], labels=[1, 0]),
        Prompt(box=(10, 10, 150, 100)),
        Prompt(points=[(30, 30)], box=(0, 0, 90, 80)),
        Prompt(points=[(150, 20)]),
    ]
    batch = seg.predict_batch(prompts, multimask=True, image=image_array)
    assert len(batch) == 15 and batch.data["prompt_index"].tolist() == [i for i in range(5) for _ in range(3)]
    for i, p in enumerate(prompts):
        alone = seg.predict_batch([p], multimask=True, image=image_array)
        np.testing.assert_array_equal(batch.masks[3 * i: 3 * i + 3], alone.masks)
        np.testing.assert_allclose(batch.scores[3 * i: 3 * i + 3], alone.scores, atol=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(points=[(200, 10)]), r"outside the 200x120 image"),
    (dict(points=[(-1, 10)]), "outside"),
    (dict(points=[(10, 120)]), "outside"),
    (dict(box=(10, 10, 250, 50)), "not a box inside"),
    (dict(box=(50, 10, 20, 50)), "not a box inside"),
    (dict(points=[(10, 10)], labels=[2]), "labels must be 1"),
    (dict(points=[(10, 10), (20, 20)], labels=[1]), "2 points but 1 labels"),
    (dict(), "at least one point"),
    (dict(mask_input=np.zeros((7, 7))), "fits neither"),
])
def test_bad_prompts_are_rejected(tiny_segmenter, image_array, kwargs, match):
    with pytest.raises(PromptError, match=match):
        tiny_segmenter.predict(image=image_array, **kwargs)


def test_no_image_set(tiny_sam_dir):
    s = Segmenter.load(str(tiny_sam_dir), precision="fp32")
    with pytest.raises(PromptError, match="no image set"):
        s.predict(points=[(1, 1)])


def test_embedding_cached_by_content(tiny_sam_dir, image_array, image_path):
    s = Segmenter.load(str(tiny_sam_dir), precision="fp32")
    calls = []
    original = s.model.encode
    s.model.encode = lambda px: calls.append(1) or original(px)
    k1 = s.set_image(image_array)
    k2 = s.set_image(image_path)  # same pixels, other source
    k3 = s.set_image(image_array.copy())
    assert k1 == k2 == k3 and len(calls) == 1 and s.cache.hits == 2
    s.set_image(255 - image_array)
    assert len(calls) == 2


def test_cache_is_bounded_by_bytes(tiny_segmenter, image_array):
    _, emb = tiny_segmenter.embed(image_array)
    cache = EmbeddingCache(max_bytes=int(emb.nbytes * 2.5))
    for i in range(5):
        cache.put(str(i), emb)
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes
    assert cache.get("0") is None and cache.get("4") is emb


def test_scribble_points():
    pts = scribble_to_points([(0, 0), (100, 0)], spacing=25)
    np.testing.assert_allclose(pts, [[0, 0], [25, 0], [50, 0], [75, 0], [100, 0]])
    assert len(scribble_to_points([(0, 0), (1000, 0)], spacing=1, max_points=10)) == 10
    p = Prompt.from_scribble([(10, 10), (10, 60)], label=0, spacing=10)
    assert (p.labels == 0).all() and len(p.points) == 6


def test_concurrent_predictions_are_consistent(tiny_sam_dir, image_array):
    s = Segmenter.load(str(tiny_sam_dir), precision="fp32")
    expected = s.predict(points=[(50, 40)], image=image_array).masks
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(s.predict(points=[(50, 40)], image=image_array).masks)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 12
    assert all((r == expected).all() for r in results)


def test_bf16_encoder_keeps_masks(tiny_sam_dir, image_array):
    a = Segmenter.load(str(tiny_sam_dir), precision="fp32")
    b = Segmenter.load(str(tiny_sam_dir), precision="bf16")
    ma = a.predict(points=[(50, 40)], multimask=True, image=image_array).masks
    mb = b.predict(points=[(50, 40)], multimask=True, image=image_array).masks
    ious = [(x & y).sum() / max((x | y).sum(), 1) for x, y in zip(ma, mb)]
    assert min(ious) > 0.9


def test_masks_come_from_the_transposed_upscale_unchanged(seg, image_array):
    """predict_batch thresholds the transposed upscale (column-major masks for the RLE encoder):
    the same logits as the plain upscale, and the same masks as thresholding those."""
    import torch

    _, emb = seg.embed(image_array)
    h, w = image_array.shape[:2]
    assert h != w
    res = seg.predict(points=[(50, 40)], multimask=True, image=emb)
    low = torch.from_numpy(res.data["low_res_logits"])
    plain = seg.model.upscale(low, emb.frame)
    trans = seg.model.upscale(low, emb.frame, transposed=True)
    assert plain.shape == (3, h, w) and trans.shape == (3, w, h)
    torch.testing.assert_close(trans.transpose(-1, -2), plain, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(res.masks, (plain > seg.model.mask_threshold).numpy())
    assert res.masks[0].flags.f_contiguous
