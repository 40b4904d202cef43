"""Segment everything: building blocks equal the reference's, parameters, RLE output, progress, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torchvision.ops import masks_to_boxes

from conftest import make_image
from vfm.errors import PromptError
from vfm.results.rle import decode_rle
from vfm.tasks import amg_utils as U
from vfm.tasks.everything import MaskGenerator

ZERO = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


def build_everything_sam(tiny_sam_dir, out):
    """The tiny SAM with a livelier decoder: point-dependent masks with logits well beyond ±1."""
    from transformers import SamModel

    m = SamModel.from_pretrained(tiny_sam_dir)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.dim() >= 2 and (n.startswith("mask_decoder") or n.startswith("prompt_encoder")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for mlp in m.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(20)
        pe = torch.randn(m.shared_image_embedding.positional_embedding.shape, generator=g) * 3.0
        m.shared_image_embedding.positional_embedding.copy_(pe)
        m.prompt_encoder.shared_embedding.positional_embedding.copy_(pe)
    m.save_pretrained(out)
    shutil.copy(tiny_sam_dir / "preprocessor_config.json", out)
    return out


@pytest.fixture(scope="module")
def live_sam_dir(tiny_sam_dir, tmp_path_factory):
    return build_everything_sam(tiny_sam_dir, tmp_path_factory.mktemp("models") / "live-sam")


@pytest.fixture(scope="module")
def live_segmenter(live_sam_dir):
    from vfm.tasks.segment import Segmenter

    return Segmenter.load(str(live_sam_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def amg():
    pytest.importorskip("segment_anything")
    from segment_anything.utils import amg as ref

    return ref


# ---------------------------------------------------------------------------------- building blocks
def test_grids_and_crops_equal_reference(amg):
    for n in (1, 4, 7, 32):
        np.testing.assert_array_equal(U.build_point_grid(n), amg.build_point_grid(n))
    for a, b in zip(U.build_all_layer_point_grids(16, 2, 2), amg.build_all_layer_point_grids(16, 2, 2)):
        np.testing.assert_array_equal(a, b)
    for size in [(120, 200), (1536, 2048), (1000, 333)]:
        for layers in (0, 1, 2):
            assert U.generate_crop_boxes(size, layers, 512 / 1500) == amg.generate_crop_boxes(size, layers, 512 / 1500)


def test_boxes_stability_edge_equal_reference(amg):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn((6, 30, 40), generator=g) * 3
    logits[2] = -5  # an empty mask
    masks = logits > 0
    assert torch.equal(masks_to_boxes(masks).long(), amg.batched_mask_to_box(masks))  # what everything.py does
    torch.testing.assert_close(U.stability_score(logits, 0.0, 1.0)[[0, 1, 3]],
                               amg.calculate_stability_score(logits, 0.0, 1.0)[[0, 1, 3]])
    boxes = torch.tensor([[0, 0, 10, 10], [25, 5, 99, 60], [0, 0, 0, 0], [3, 30, 50, 59]])
    for crop in ([0, 0, 100, 60], [20, 0, 100, 60], [0, 0, 60, 40]):
        assert torch.equal(U.is_box_near_crop_edge(boxes, crop, [0, 0, 120, 80]),
                           amg.is_box_near_crop_edge(boxes, crop, [0, 0, 120, 80]))


@pytest.mark.parametrize("mode", ["holes", "islands"])
def test_small_regions_equal_reference_and_scipy(amg, mode, monkeypatch):
    rng = np.random.RandomState(0)
    mask = rng.rand(60, 80) > 0.55
    want, changed_ref = amg.remove_small_regions(mask, 6, mode)
    got, changed = U.remove_small_regions(mask, 6, mode)
    np.testing.assert_array_equal(got, want)
    assert changed == changed_ref
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # scipy fallback gives the same masks
    got2, _ = U.remove_small_regions(mask, 6, mode)
    np.testing.assert_array_equal(got2, want)


def test_fast_decoder_equals_adapter_decode(live_segmenter):
    from vfm.tasks.amg_decode import PointDecoder

    img = make_image(120, 200)
    _, emb = live_segmenter.embed(img)
    model = live_segmenter.model
    pts = model.coords_to_model(U.build_point_grid(5) * np.array([[200, 120]]), emb.frame)
    dec = PointDecoder(model, emb)
    assert dec.fast
    state = dec.run(pts)
    low = dec.masks(state, torch.arange(len(pts)))
    ref_low, ref_iou = model.decode(emb, torch.from_numpy(pts)[:, None], torch.ones((len(pts), 1), dtype=torch.int64),
                                    None, None, True)
    torch.testing.assert_close(state.iou, ref_iou, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(low, ref_low, atol=1e-3, rtol=1e-4)
    sub = dec.masks(state, torch.tensor([3, 0]))
    torch.testing.assert_close(sub, low[[3, 0]])


# ---------------------------------------------------------------------------------- generator
def test_generate_returns_rles_and_reference_fields(live_segmenter):
    img = make_image(120, 200)
    res = MaskGenerator(live_segmenter, points_per_side=6, box_nms_thresh=1.0, **ZERO).generate(img)
    assert len(res) == 6 * 6 * 3  # nothing filtered, nothing suppressed
    assert res.masks is None and len(res.rles) == len(res)
    assert res.image_size == (120, 200)
    for rle in res.rles[:5]:
        assert decode_rle(rle).shape == (120, 200)
    assert len(res.data["stability_score"]) == len(res) and len(res.data["point_coords"]) == len(res)
    assert all(cb == [0.0, 0.0, 200.0, 120.0] for cb in res.data["crop_box"])
    pts = np.array([p[0] for p in res.data["point_coords"]])
    assert pts[:, 0].min() > 0 and pts[:, 0].max() < 200 and pts[:, 1].max() < 120
    assert np.all(res.scores[:-1] >= res.scores[1:])  # NMS order: by decreasing predicted IoU
    # boxes are the masks' tight pixel-edge boxes
    m = decode_rle(res.rles[0])
    ys, xs = np.nonzero(m)
    np.testing.assert_array_equal(res.xyxy[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_thresholds_filter_subsets(live_segmenter):
    img = make_image(120, 200)
    base = MaskGenerator(live_segmenter, points_per_side=6, box_nms_thresh=1.0, **ZERO).generate(img)
    t = float(np.median(base.scores))
    hi = MaskGenerator(live_segmenter, points_per_side=6, box_nms_thresh=1.0, pred_iou_thresh=t,
                       stability_score_thresh=0).generate(img)
    assert 0 < len(hi) < len(base) and np.all(hi.scores > t)
    s = float(np.median(base.data["stability_score"]))
    st = MaskGenerator(live_segmenter, points_per_side=6, box_nms_thresh=1.0, pred_iou_thresh=0,
                       stability_score_thresh=s).generate(img)
    assert 0 < len(st) < len(base) and np.all(st.data["stability_score"] >= s)
    nms = MaskGenerator(live_segmenter, points_per_side=6, box_nms_thresh=0.7, **ZERO).generate(img)
    assert 1 <= len(nms) < len(base)


def test_point_grids_batches_and_progress(live_segmenter):
    img = make_image(120, 200)
    calls = []
    grid = np.array([[0.25, 0.5], [0.75, 0.5], [0.5, 0.2]])
    gen = MaskGenerator(live_segmenter, points_per_side=None, point_grids=[grid], points_per_batch=2, box_nms_thresh=1.0,
                        progress=lambda d, t, s: calls.append((d, t, s)), **ZERO)
    res = gen.generate(img)
    assert len(res) == 9
    got = sorted({tuple(p[0]) for p in res.data["point_coords"]})
    assert got == sorted({(50.0, 60.0), (150.0, 60.0), (100.0, 24.0)})
    assert calls[-1][:2] == (2, 2) and all(t == 2 for _, t, _ in calls)
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)
    one = MaskGenerator(live_segmenter, points_per_side=None, point_grids=[grid], points_per_batch=64, box_nms_thresh=1.0,
                        **ZERO).generate(img)
    a = np.stack([decode_rle(r) for r in one.rles])  # batching changes masks only by float rounding
    b = np.stack([decode_rle(r) for r in res.rles])
    assert len(a) == len(b) and (a != b).mean() < 1e-3


def test_crop_layer_and_small_regions(live_segmenter):
    img = make_image(120, 200)
    calls = []
    res = MaskGenerator(live_segmenter, points_per_side=4, crop_n_layers=1, box_nms_thresh=1.0, crop_nms_thresh=1.0,
                        progress=lambda d, t, s: calls.append(s), **ZERO).generate(img)
    assert len(res) >= 48
    assert any("crop 5/5" in s for s in calls)
    crops = {tuple(c) for c in res.data["crop_box"]}
    assert (0.0, 0.0, 200.0, 120.0) in crops
    clean = MaskGenerator(live_segmenter, points_per_side=4, box_nms_thresh=1.0, min_mask_region_area=50, **ZERO).generate(img)
    assert len(clean) >= 1
    from scipy import ndimage

    for rle in clean.rles:  # no island under 50 px is left (unless it is the only one)
        labels, n = ndimage.label(decode_rle(rle), structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        assert n == 1 or sizes.min() >= 50


def test_other_families_run(tiny_sam_hq_dir, tiny_sam2_dir):
    from vfm.tasks.segment import Segmenter

    img = make_image(90, 130)
    for d in (tiny_sam_hq_dir, tiny_sam2_dir):
        seg = Segmenter.load(str(d), device="cpu", precision="fp32")
        res = MaskGenerator(seg, points_per_side=3, box_nms_thresh=1.0, **ZERO).generate(img)
        assert len(res) == 27 and res.image_size == (90, 130)
        assert all(decode_rle(r).shape == (90, 130) for r in res.rles)


@pytest.mark.parametrize("kw", [
    dict(points_per_side=0), dict(points_per_side=None), dict(point_grids=[np.zeros((1, 2))]),
    dict(points_per_batch=0), dict(crop_n_layers=-1), dict(crop_overlap_ratio=1.5),
    dict(points_per_side=None, point_grids=[np.array([[2.0, 0.5]])]),
    dict(points_per_side=None, point_grids=[np.array([[0.5, 0.5]])], crop_n_layers=1),
    dict(points_per_side=2, crop_n_layers=2, crop_n_points_downscale_factor=4),
])
def test_bad_parameters(kw):
    with pytest.raises(PromptError):
        MaskGenerator(None, **kw)


def test_empty_result_is_valid(live_segmenter):
    res = MaskGenerator(live_segmenter, points_per_side=2, pred_iou_thresh=1e9).generate(make_image(60, 80))
    assert len(res) == 0 and res.rles == [] and res.image_size == (60, 80)
    from vfm.formats.coco import instances_to_document

    assert instances_to_document(res)["annotations"] == []


# ---------------------------------------------------------------------------------- CLI
def _cli(args, capsys):
    from vfm.cli.main import main

    try:
        rc = main(args)
    except SystemExit as e:  # argparse errors
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_json_out_quiet(live_sam_dir, image_path, tmp_path, capsys):
    common = ["everything", str(image_path), "--model", str(live_sam_dir), "--points-per-side", "4",
              "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--box-nms-thresh", "1", "--quiet"]
    rc, out, err = _cli(common + ["--json"], capsys)
    assert rc == 0 and err == ""
    doc = json.loads(out)
    assert len(doc["annotations"]) == 48
    ann = doc["annotations"][0]
    for key in ("segmentation", "bbox", "area", "score", "stability_score", "point_coords", "crop_box"):
        assert key in ann
    assert ann["segmentation"]["size"] == [doc["image"]["height"], doc["image"]["width"]]
    assert len(ann["point_coords"]) == 1 and len(ann["point_coords"][0]) == 2
    rc, out, err = _cli(common + ["--out", str(tmp_path / "o")], capsys)
    assert rc == 0 and out == "" and err == ""
    assert (tmp_path / "o" / "overlay.png").stat().st_size > 0
    assert json.loads((tmp_path / "o" / "result.json").read_text()) == doc


def test_cli_flags_reach_generator(live_sam_dir, image_path, capsys):
    rc, out, _ = _cli(["everything", str(image_path), "--model", str(live_sam_dir), "--points-per-side", "3",
                       "--points-per-batch", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0",
                       "--stability-score-offset", "0.5", "--box-nms-thresh", "1", "--crop-n-layers", "1",
                       "--crop-nms-thresh", "1", "--crop-overlap-ratio", "0.2", "--crop-n-points-downscale-factor", "1",
                       "--min-mask-region-area", "0", "--json", "--device", "cpu", "--precision", "fp32"], capsys)
    assert rc == 0
    crops = {tuple(a["crop_box"]) for a in json.loads(out)["annotations"]}
    assert len(crops) >= 1


@pytest.mark.parametrize("extra, needle", [
    (["--box-nms-thresh", "2"], "--box-nms-thresh"),
    (["--points-per-side", "0"], "points_per_side"),
    (["--stability-score-thresh", "nan"], "--stability-score-thresh"),
])
def test_cli_errors_one_line(live_sam_dir, image_path, capsys, extra, needle):
    rc, out, err = _cli(["everything", str(image_path), "--model", str(live_sam_dir), "--json"] + extra, capsys)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_cli_bad_image_and_model(live_sam_dir, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    rc, _, err = _cli(["everything", str(bad), "--model", str(live_sam_dir)], capsys)
    assert rc == 1 and err.count("\n") == 1
    good = tmp_path / "good.png"
    from PIL import Image

    Image.fromarray(make_image(40, 50)).save(good)
    rc, _, err = _cli(["everything", str(good), "--model", str(tmp_path / "missing")], capsys)
    assert rc == 1 and err.count("\n") == 1
