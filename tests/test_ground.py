"""Text -> masks (Grounded-SAM) on tiny offline detector + SAM checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import make_image
from vfm.tasks.detect import Detector
from vfm.tasks.ground import Grounder
from vfm.tasks.prompts import Prompt


@pytest.fixture(scope="module")
def grounder(tiny_gdino_dir, tiny_segmenter):
    return Grounder(Detector.load(str(tiny_gdino_dir), device="cpu", precision="fp32"), tiny_segmenter)


def test_ground_gives_one_named_mask_per_detection_in_one_batched_call(grounder, monkeypatch):
    img = make_image(120, 200, seed=3)
    dets = grounder.detector.detect(img, "cat, remote control", box_threshold=0.99)
    calls = []
    original = grounder.segmenter.predict_batch
    monkeypatch.setattr(grounder.segmenter, "predict_batch", lambda prompts, **k: calls.append(len(prompts)) or original(prompts, **k))
    res = grounder.ground(img, "cat, remote control", box_threshold=0.99)
    assert calls == [len(dets)] and len(dets) > 1  # every box in one call
    assert len(res) == len(dets)
    assert res.class_names == dets.class_names and res.class_ids.tolist() == dets.class_ids.tolist()
    np.testing.assert_allclose(res.xyxy, dets.xyxy)
    np.testing.assert_allclose(res.scores, dets.scores)
    assert res.masks.shape == (len(dets), 120, 200)
    assert res.data["mask_score"].shape == (len(dets),)
    # Batched masks equal the masks of each box prompted alone.
    for i in (0, len(dets) - 1):
        alone = original([Prompt(box=dets.xyxy[i])], image=img)
        np.testing.assert_array_equal(res.masks[i], alone.masks[0])


def test_ground_without_detections_is_empty(grounder):
    res = grounder.ground(make_image(), "cat", box_threshold=1.0)
    assert len(res) == 0 and res.class_names == [] and res.masks.shape == (0, 120, 200)


def test_cli_ground_json_and_out(tiny_gdino_dir, tiny_sam_dir, image_path, tmp_path, capsys):
    from vfm.cli.main import main

    out = tmp_path / "out"
    rc = main(["ground", str(image_path), "--classes", "cat, dog", "--detector", str(tiny_gdino_dir),
               "--segmenter", str(tiny_sam_dir), "--box-threshold", "0.99", "--precision", "fp32",
               "--json", "--out", str(out)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    assert doc["annotations"]
    for ann in doc["annotations"]:
        assert ann["segmentation"]["size"] == [120, 200]
        assert ann["category_name"] in ("cat", "dog")
    n = len(doc["annotations"])
    assert len(list(out.glob("mask_*.png"))) == n and (out / "overlay.png").is_file()


def test_cli_ground_errors(tiny_gdino_dir, tiny_sam_dir, image_path, capsys):
    from vfm.cli.main import main

    rc = main(["ground", str(image_path), "--classes", "cat", "--detector", str(tiny_sam_dir), "--segmenter", str(tiny_sam_dir)])
    err = capsys.readouterr().err
    assert rc == 1 and "not usable to detect" in err
    rc = main(["ground", str(image_path), "--classes", "cat", "--text-threshold", "-1", "--detector", str(tiny_gdino_dir)])
    err = capsys.readouterr().err
    assert rc == 1 and "outside 0..1" in err and len(err.strip().splitlines()) == 1
