"""vfm depth: parity with transformers' depth-estimation pipeline for every family, the files it
writes (16-bit PNG, .npy, preview), and vfm eval --task depth against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

BUILDERS = {
    "depth-anything": ("build_depth_anything", {}, "relative"),
    "depth-anything-metric": ("build_depth_anything", {"metric": True}, "metric"),
    "dpt": ("build_dpt", {}, "relative"),
    "zoedepth": ("build_zoedepth", {}, "metric"),
    "depth-pro": ("build_depth_pro", {}, "metric"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from vfm.testing import tiny_depth

    root = tmp_path_factory.mktemp("depth-models")
    return {key: getattr(tiny_depth, fn)(root / key, seed=0, **kw) for key, (fn, kw, _) in BUILDERS.items()}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(make_image(90, 130, seed=3)).save(path)
    return path


@pytest.mark.parametrize("key", list(BUILDERS))
def test_same_numbers_as_the_transformers_pipeline(key, models, photo):
    from transformers import pipeline

    from vfm.tasks.depth import DepthEstimator

    ref = pipeline("depth-estimation", model=str(models[key]), device="cpu")(Image.open(photo))
    est = DepthEstimator.load(str(models[key]), device="cpu")
    depth = est.estimate(photo)
    assert depth.kind == BUILDERS[key][2] and depth.values.shape == (90, 130) and depth.values.dtype == np.float32
    np.testing.assert_allclose(depth.values, ref["predicted_depth"].numpy(), rtol=0, atol=1e-6)
    if key == "depth-pro":
        assert set(depth.extras) == {"focal_length", "field_of_view"}


def test_exif_rotation_gives_the_displayed_size(models, tmp_path):
    from vfm.tasks.depth import DepthEstimator

    img = Image.fromarray(make_image(60, 100, seed=1))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes())
    depth = DepthEstimator.load(str(models["depth-anything"]), device="cpu").estimate(path)
    assert depth.values.shape == (100, 60)


@pytest.mark.parametrize("key", ["depth-anything", "depth-anything-metric"])
def test_cli_out_writes_png16_npy_preview_and_json(key, models, photo, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["depth", str(photo), "--model", str(models[key]), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["image"] == {"width": 130, "height": 90, "file_name": "photo.png"}
    d = doc["depth"]
    assert d["kind"] == BUILDERS[key][2] and d["files"] == ["depth.png", "depth.npy", "depth_color.png"]
    values = np.load(out / "depth.npy")
    assert values.shape == (90, 130) and d["min"] == pytest.approx(float(values.min()))
    png = np.asarray(Image.open(out / "depth.png"))
    assert png.dtype == np.uint16 and png.shape == (90, 130)
    if d["kind"] == "metric":
        assert d["png_scale"] == 256
        np.testing.assert_array_equal(png, np.clip(np.rint(values.astype(np.float64) * 256), 1, 65535).astype(np.uint16))
    else:
        back = d["png_min"] + png / 65535 * (d["png_max"] - d["png_min"])
        np.testing.assert_allclose(back, values, atol=(d["png_max"] - d["png_min"]) / 65535)
        assert png.min() == 0 and png.max() == 65535
    preview = np.asarray(Image.open(out / "depth_color.png"))
    assert preview.shape == (90, 130, 3) and preview.dtype == np.uint8
    assert preview.reshape(-1, 3).std(axis=0).max() > 10  # a picture, not a flat colour
    assert json.loads((out / "result.json").read_text()) == doc


def test_preview_puts_near_in_warm_colours():
    from vfm.formats.depth import colorize
    from vfm.results.depth import DepthMap

    ramp = np.tile(np.linspace(1.0, 10.0, 50, dtype=np.float32), (8, 1))  # metres: left near, right far
    rgb = colorize(DepthMap(ramp, "metric")).astype(int)
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, -1, 2] > rgb[0, -1, 0]  # near red, far blue
    rgb_rel = colorize(DepthMap(1.0 / ramp, "relative")).astype(int)  # inverse depth: same picture
    np.testing.assert_array_equal(rgb_rel[0, [0, -1]], rgb[0, [0, -1]])


def test_wrong_models_and_bad_images_are_one_line(models, photo, tiny_sam_dir, tmp_path, capsys):
    assert main(["depth", str(photo), "--model", str(tiny_sam_dir)]) == 1
    err = capsys.readouterr().err
    assert "not usable to depth" in err and "depth-anything-v2-small" in err and len(err.strip().splitlines()) == 1
    assert main(["segment", str(photo), "--model", str(models["dpt"]), "--point", "5,5"]) == 1
    assert "not usable to segment" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(photo.read_bytes()[:100])
    assert main(["depth", str(broken), "--model", str(models["dpt"])]) == 1
    assert "corrupt or truncated" in capsys.readouterr().err


# ------------------------------------------------------------------------------- vfm eval --task depth
def _png16(path, metres, scale=256):
    Image.fromarray(np.rint(np.asarray(metres, float) * scale).astype(np.uint16)).save(path)


def test_depth_metrics_against_hand_computed_values(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    _png16(gt / "a.png", [[1, 2], [4, 0]])  # 0: no ground truth
    np.save(pred / "a.npy", np.array([[1, 2], [2, 5]], np.float32))
    assert main(["eval", "--task", "depth", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images"] == 1 and res["align"] == "none"
    assert res["abs_rel"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert res["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert res["delta1"] == pytest.approx(2 / 3) and res["delta2"] == pytest.approx(2 / 3)
    assert res["delta3"] == pytest.approx(2 / 3)  # ratio 2 is above 1.25^3 = 1.95
    # median scaling: pred x median(gt)/median(pred) = x 2/2
    assert main(["eval", "--task", "depth", "--gt", str(gt), "--pred", str(pred), "--align", "median", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["abs_rel"] == pytest.approx(1 / 6)


def test_relative_maps_are_aligned_by_scale_and_shift_on_inverse_depth(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    (pred / "b").mkdir(parents=True)
    gt.mkdir()
    metres = np.array([[1.0, 2.0, 4.0], [8.0, 5.0, 2.5]])
    np.save(gt / "b.npy", metres)
    np.save(pred / "b" / "depth.npy", (3.0 / metres + 0.5).astype(np.float32))  # disparity, scale 3, shift 0.5
    (pred / "b" / "result.json").write_text(json.dumps({"depth": {"kind": "relative"}}))
    assert main(["eval", "--task", "depth", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["align"] == "lstsq" and res["abs_rel"] == pytest.approx(0, abs=1e-5) and res["delta1"] == 1.0
    assert main(["eval", "--task", "depth", "--gt", str(gt), "--pred", str(pred), "--align", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["abs_rel"] > 0.5  # unaligned inverse depth is far off


def test_depth_eval_of_vfm_depth_output_end_to_end(models, photo, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["depth", str(photo), "--model", str(models["depth-anything-metric"]), "--out", str(out / "photo"),
                 "--quiet"]) == 0
    gt = tmp_path / "gt"
    gt.mkdir()
    values = np.load(out / "photo" / "depth.npy")
    _png16(gt / "photo.png", values * 1.1)  # ground truth 10% farther everywhere
    assert main(["eval", "--task", "depth", "--gt", str(gt), "--pred", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["abs_rel"] == pytest.approx(1 - 1 / 1.1, abs=2e-3) and res["delta1"] == 1.0


@pytest.mark.parametrize("case, message", [("size", "predict at the ground truth's resolution"),
                                           ("names", "of the same name"), ("nogt", "not a folder")])
def test_depth_eval_bad_input_is_one_line(case, message, tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    _png16(gt / "a.png", np.ones((4, 4)))
    np.save(pred / ("a.npy" if case != "names" else "other.npy"), np.ones((4, 5) if case == "size" else (4, 4)))
    argv = ["eval", "--task", "depth", "--gt", str(gt if case != "nogt" else tmp_path / "missing"), "--pred", str(pred)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
