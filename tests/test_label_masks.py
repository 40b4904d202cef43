"""A label for every mask: masked crops, one batched pass, semantic voting, CLI glue."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tests.conftest import make_image
from vfm.errors import PromptError
from vfm.io.image import load_image
from vfm.results.instances import Instances
from vfm.tasks.classify import Classifier
from vfm.tasks.label_masks import FILL, MaskLabeler, crop_box, masked_crop, synonym_matrix, vote_shares

CLASSES = ["cat", "dog", "sky", "building", "tree"]


@pytest.fixture(scope="module")
def m2f_dir(tmp_path_factory):
    from vfm.testing.tiny_clip import build_mask2former

    return build_mask2former(tmp_path_factory.mktemp("models") / "tiny-m2f", seed=0)


@pytest.fixture(scope="module")
def clip(clip_dir):
    return Classifier.load(str(clip_dir), device="cpu")


def shape_masks(height=120, width=200, n=8, seed=0) -> np.ndarray:
    """``n`` rectangles and discs of different sizes."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    masks = []
    for i in range(n):
        cx, cy = rng.randint(10, width - 10), rng.randint(10, height - 10)
        r = rng.randint(4, 40)
        if i % 2:
            masks.append((abs(xx - cx) < r) & (abs(yy - cy) < r // 2 + 2))
        else:
            masks.append((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)
    return np.stack(masks)


@pytest.fixture(scope="module")
def instances():
    masks = shape_masks()
    return Instances.from_masks(masks, scores=np.linspace(0.9, 0.5, len(masks)))


def test_crop_box_grows_and_clips():
    assert crop_box([10, 20, 30, 60], 0.1, 100, 100) == (6, 16, 34, 64)
    assert crop_box([0, 0, 100, 50], 0.5, 50, 100) == (0, 0, 100, 50)
    x0, y0, x1, y1 = crop_box([99.5, 49.5, 100, 50], 0.0, 50, 100)
    assert x1 > x0 and y1 > y0


def test_masked_crop_fills_background_and_keeps_object():
    pixels = np.full((40, 60, 3), 200, np.uint8)
    pixels[10:20, 10:50] = (255, 0, 0)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:50] = True
    crop = masked_crop(pixels, mask, (5, 5, 55, 25), 50)
    assert crop.shape == (50, 50, 3)
    assert tuple(crop[0, 0]) == FILL  # padding and background are gray, not the image's 200
    assert tuple(crop[25, 25]) == (255, 0, 0)
    assert not np.any(np.all(crop == 200, axis=-1))


def test_labels_equal_per_crop_classification(clip, instances):
    image = make_image(seed=0)
    out = MaskLabeler(clip).label(image, instances, ", ".join(CLASSES))
    assert len(out) == len(instances)
    np.testing.assert_array_equal(out.scores, instances.scores)  # mask quality kept
    assert out.class_names == [CLASSES[i] for i in out.class_ids]
    labeler = MaskLabeler(clip)
    crops = labeler.crops(image, instances)
    for i, crop in enumerate(crops):
        single = clip.classify(crop, CLASSES)
        assert out.class_names[i] == single.names[0]
        assert out.data["label_score"][i] == pytest.approx(single.scores[0], rel=1e-4)


def test_all_crops_in_one_forward_pass(clip, instances):
    image = make_image(seed=0)
    before = clip.adapter.image_forward_calls
    one = MaskLabeler(clip).label(image, instances, CLASSES)
    assert clip.adapter.image_forward_calls == before + 1
    before = clip.adapter.image_forward_calls
    chunked = MaskLabeler(clip, chunk=3).label(image, instances, CLASSES)
    assert clip.adapter.image_forward_calls == before + 3  # 8 crops in chunks of 3
    assert chunked.class_names == one.class_names
    np.testing.assert_allclose(chunked.data["label_score"], one.data["label_score"], rtol=1e-4)


def test_rle_only_instances_and_extra_data_kept(clip, instances):
    image = make_image(seed=0)
    rle = instances.drop_masks()
    rle.data["stability_score"] = np.ones(len(rle), np.float32)
    out = MaskLabeler(clip).label(image, rle, CLASSES)
    ref = MaskLabeler(clip).label(image, instances, CLASSES)
    assert out.masks is None and out.rles is not None
    assert out.class_names == ref.class_names
    assert "stability_score" in out.data


def test_empty_and_bad_inputs(clip, instances):
    image = make_image(seed=0)
    empty = MaskLabeler(clip).label(image, Instances.empty((120, 200)), CLASSES)
    assert len(empty) == 0 and empty.class_names == [] and len(empty.data["label_score"]) == 0
    with pytest.raises(PromptError, match="empty"):
        MaskLabeler(clip).label(image, instances, " , ")
    with pytest.raises(PromptError, match="masks are for"):
        MaskLabeler(clip).label(make_image(100, 100), instances, CLASSES)
    boxes = Instances(image_size=(120, 200), xyxy=instances.xyxy, scores=instances.scores)
    with pytest.raises(PromptError, match="box-only"):
        MaskLabeler(clip).label(image, boxes, CLASSES)
    with pytest.raises(PromptError):
        MaskLabeler(clip, semantic_weight=2)


def test_siglip_labeler(siglip_dir, instances):
    clf = Classifier.load(str(siglip_dir), device="cpu")
    out = MaskLabeler(clf).label(make_image(seed=0), instances, CLASSES)
    assert set(out.class_names) <= set(CLASSES)
    assert np.all((out.data["label_score"] > 0) & (out.data["label_score"] < 1))


# ------------------------------------------------------------------------------- semantic voting
def test_synonym_matrix_and_vote_shares():
    names = ["wall", "building, edifice", "sky", "Tree"]
    m = synonym_matrix(names, ["edifice", "tree", "cat"])
    assert m.tolist() == [[False, False, False], [True, False, False], [False, False, False], [False, True, False]]
    sem = np.zeros((10, 10), np.int32)
    sem[:, 5:] = 1  # right half "building"
    sem[8:, :] = 3  # bottom rows "Tree"
    masks = np.zeros((3, 10, 10), bool)
    masks[0, 0:4, 5:10] = True  # all building
    masks[1, 6:10, 0:5] = True  # 2 rows wall, 2 rows tree
    masks[2, 0:2, 0:2] = True  # wall only
    inst = Instances.from_masks(masks, scores=[1, 1, 1])
    shares, majority = vote_shares(sem, names, inst, ["building", "tree", "cat"])
    np.testing.assert_allclose(shares, [[1, 0, 0], [0, 0.5, 0], [0, 0, 0]])
    assert majority[0] == "building" and majority[2] == "wall"


@pytest.fixture(scope="module")
def oneformer_dir(tmp_path_factory):
    from vfm.testing.tiny_clip import build_oneformer

    return build_oneformer(tmp_path_factory.mktemp("models") / "tiny-oneformer", seed=2)


@pytest.mark.parametrize("kind", ["m2f", "oneformer"])
def test_semantic_segmenter_matches_transformers_postprocessing(kind, request):
    import torch
    from transformers import AutoProcessor, Mask2FormerForUniversalSegmentation, OneFormerForUniversalSegmentation

    from vfm.models.semantic import SemanticSegmenter

    model_dir = request.getfixturevalue(f"{kind}_dir")
    seg = SemanticSegmenter.load(str(model_dir), device="cpu")
    assert seg.family == ("mask2former" if kind == "m2f" else "oneformer")
    image = make_image(90, 130, seed=3)
    ours = seg.segment(image)
    proc = AutoProcessor.from_pretrained(model_dir)
    if kind == "m2f":
        model = Mask2FormerForUniversalSegmentation.from_pretrained(model_dir).eval()
        enc = proc(images=[image], return_tensors="pt")
    else:
        model = OneFormerForUniversalSegmentation.from_pretrained(model_dir).eval()
        enc = proc(images=[image], task_inputs=["semantic"], return_tensors="pt")
    with torch.no_grad():
        out = model(**{k: v for k, v in enc.items() if isinstance(v, torch.Tensor)})
    ref = proc.post_process_semantic_segmentation(out, target_sizes=[image.shape[:2]])[0].numpy()
    assert ours.shape == image.shape[:2]
    # transformers resizes through a fixed 384x384 map first; only boundary pixels may differ.
    assert (ours == ref).mean() > 0.98


def test_voting_combines_scores_by_the_documented_rule(clip, m2f_dir, instances):
    from vfm.models.semantic import SemanticSegmenter

    seg = SemanticSegmenter.load(str(m2f_dir), device="cpu")
    image = make_image(seed=0)
    classes = ["cat", "building", "sky", "dog"]
    plain = MaskLabeler(clip).classifier_scores(image, instances, classes)
    shares, majority = vote_shares(seg.segment(image), seg.class_names, instances, classes)
    assert shares.sum() > 0  # the tiny model's map names some of these classes
    for w in (0.5, 1.0):
        out = MaskLabeler(clip, seg, semantic_weight=w).label(image, instances, classes)
        combined = (1 - w) * plain + w * shares
        np.testing.assert_array_equal(out.class_ids, combined.argmax(1))
        np.testing.assert_allclose(out.data["label_score"], combined.max(1), rtol=1e-4)
        assert out.data["semantic_label"] == majority


# ------------------------------------------------------------------------------------- CLI glue
def parse(argv):
    from vfm.cli.label_opts import add_label_options

    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    add_label_options(p)
    return p.parse_args(argv)


def test_apply_labels_noop_without_classes(instances):
    from vfm.cli.label_opts import apply_labels

    args = parse([])
    assert args.classifier == "clip-vit-base-32" and args.semantic_model is None
    image = load_image(make_image(seed=0))
    out, categories = apply_labels(args, image, instances)
    assert out is instances and categories is None
    with pytest.raises(PromptError, match="--classes"):
        apply_labels(parse(["--semantic-model", "mask2former-ade"]), image, instances)


def test_apply_labels_with_classes_and_vocabulary(clip_dir, m2f_dir, instances, tmp_path):
    from vfm.cli.label_opts import apply_labels
    from vfm.formats.coco import instances_to_document

    image = load_image(make_image(seed=0))
    vocab = tmp_path / "v.txt"
    vocab.write_text("tree\n# comment\nCat\n")
    args = parse(["--classes", "cat, dog", "--vocabulary", str(vocab), "--classifier", str(clip_dir)])
    out, categories = apply_labels(args, image, instances)
    assert categories == ["cat", "dog", "tree"]
    assert set(out.class_names) <= set(categories) and len(out) == len(instances)
    doc = instances_to_document(out, categories=categories)
    assert [c["name"] for c in doc["categories"]] == categories
    for ann in doc["annotations"]:
        assert categories[ann["category_id"] - 1] == ann["category_name"]

    args = parse(["--classes", "cat, building", "--classifier", str(clip_dir), "--semantic-model", str(m2f_dir)])
    voted, categories = apply_labels(args, image, instances)
    assert categories == ["cat", "building"] and "semantic_label" in voted.data


def test_oneformer_votes(clip, oneformer_dir, instances):
    from vfm.models.semantic import SemanticSegmenter

    seg = SemanticSegmenter.load(str(oneformer_dir), device="cpu")
    image = make_image(seed=0)
    out = MaskLabeler(clip, seg, semantic_weight=1.0).label(image, instances, ["wall", "sky", "tree", "cat", "dog"])
    shares, majority = vote_shares(seg.segment(image), seg.class_names, instances, ["wall", "sky", "tree", "cat", "dog"])
    np.testing.assert_array_equal(out.class_ids, shares.argmax(1))
    assert out.data["semantic_label"] == majority


def test_wrong_semantic_model(clip_dir):
    from vfm.errors import ModelError
    from vfm.models.semantic import SemanticSegmenter

    with pytest.raises(ModelError, match="not usable to semantic"):
        SemanticSegmenter.load(str(clip_dir), device="cpu")
