"""`vfm label --task detect` (boxes) and `--task tag` (image-level tags) on tiny offline models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    src = tmp_path_factory.mktemp("tasks") / "images"
    src.mkdir()
    for i in range(3):
        Image.fromarray(make_image(128, 160 + 16 * i, seed=60 + i)).save(src / f"t{i}.png")
    return src


def test_detect_writes_boxes_to_coco_yolo_and_labelstudio_rectangles(folder, tmp_path):
    from pycocotools.coco import COCO

    from vfm.tasks.detect import Detector
    from vfm.testing.tiny_detectors import build_grounding_dino

    gdino = build_grounding_dino(tmp_path / "gd", seed=0)
    out = tmp_path / "out"
    assert main(["label", str(folder), "--task", "detect", "--classes", "cat, dog", "--detector", str(gdino),
                 "--box-threshold", "0.99", "--precision", "fp32", "--format", "coco,yolo,labelstudio",
                 "--out", str(out), "--quiet"]) == 0
    c = COCO(str(out / "coco.json"))
    anns = c.dataset["annotations"]
    assert anns and all("segmentation" not in a for a in anns)
    det = Detector.load(str(gdino), device="cpu", precision="fp32")
    first = det.detect(np.array(Image.open(folder / "t0.png")), "cat, dog", box_threshold=0.99)
    got = c.loadAnns(c.getAnnIds(imgIds=[1]))
    assert len(got) == len(first)
    np.testing.assert_allclose([a["bbox"] for a in got], np.round(np.c_[first.xyxy[:, :2], first.xyxy[:, 2:] - first.xyxy[:, :2]], 2), atol=0.011)
    assert (out / "yolo" / "detect" / "labels" / "train" / "t0.txt").is_file() and not (out / "yolo" / "segment").exists()
    tasks = json.loads((out / "labelstudio.json").read_text())
    items = [i for t in tasks for i in t["predictions"][0]["result"]]
    assert len(items) == len(anns) and all(i["type"] == "rectanglelabels" for i in items)
    x, y, w, h = got[0]["bbox"]
    v = tasks[0]["predictions"][0]["result"][0]["value"]
    np.testing.assert_allclose([v["x"], v["y"], v["width"], v["height"]], [100 * x / 160, 100 * y / 128, 100 * w / 160, 100 * h / 128])
    assert "<RectangleLabels" in (out / "labelstudio_config.xml").read_text()


def test_tag_writes_image_tags_to_coco_and_labelstudio_choices(folder, tmp_path):
    from vfm.tasks.tag import Tagger
    from vfm.testing.tiny_clip import build_clip

    clip = build_clip(tmp_path / "clip", seed=0)
    out = tmp_path / "out"
    assert main(["label", str(folder), "--task", "tag", "--classes", "cat, dog, car", "--classifier", str(clip),
                 "--tag-threshold", "0", "--format", "coco,labelstudio", "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "coco.json").read_text())
    assert doc["annotations"] == [] and doc["categories"] == []
    tagger = Tagger.load(str(clip), vocabulary=["cat", "dog", "car"])
    for img in doc["images"]:
        expected = tagger.tag(folder / img["file_name"], threshold=0.0).to_json()["labels"]
        assert [t["name"] for t in img["tags"]] == [t["name"] for t in expected]
        np.testing.assert_allclose([t["score"] for t in img["tags"]], [t["score"] for t in expected], atol=1e-5)
    tasks = json.loads((out / "labelstudio.json").read_text())
    assert [t["predictions"][0]["result"][0]["value"]["choices"] for t in tasks] == [[t["name"] for t in i["tags"]] for i in doc["images"]]
    assert '<Choices name="label" toName="image" choice="multiple">' in (out / "labelstudio_config.xml").read_text()


def test_tag_refuses_mask_formats(folder, tmp_path, capsys):
    rc = main(["label", str(folder), "--task", "tag", "--format", "yolo", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "image-level tags" in err


def test_everything_writes_every_mask_named_object_or_by_class(folder, tmp_path, tiny_sam_dir, tiny_segmenter):
    from pycocotools.coco import COCO

    from vfm.formats.coco import instances_to_annotations
    from vfm.tasks.everything import MaskGenerator
    from vfm.testing.tiny_clip import build_clip

    common = ["--task", "everything", "--segmenter", str(tiny_sam_dir), "--points-per-side", "4",
              "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--precision", "fp32", "--quiet"]
    out = tmp_path / "plain"
    assert main(["label", str(folder), "--out", str(out), "--format", "coco,masks", *common]) == 0
    c = COCO(str(out / "coco.json"))
    assert [cat["name"] for cat in c.dataset["categories"]] == ["object"]
    gen = MaskGenerator(tiny_segmenter, points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0)
    expected = instances_to_annotations(gen.generate(folder / "t0.png"))
    got = c.loadAnns(c.getAnnIds(imgIds=[1]))
    assert len(got) == len(expected) > 0
    assert [g["segmentation"] for g in got] == [e["segmentation"] for e in expected]
    clip = build_clip(tmp_path / "clip", seed=0)
    named = tmp_path / "named"
    assert main(["label", str(folder), "--classes", "sky, dog", "--classifier", str(clip), "--out", str(named), *common]) == 0
    doc = json.loads((named / "coco.json").read_text())
    assert [cat["name"] for cat in doc["categories"]] == ["sky", "dog"]
    assert len(doc["annotations"]) == len(c.dataset["annotations"])
    assert {a["category_id"] for a in doc["annotations"]} <= {1, 2}


def test_everything_with_the_openvino_encoder_gives_the_torch_masks(folder, tmp_path, tiny_sam_dir, monkeypatch):
    """vfm label --backend openvino: the same masks as torch fp32; the option is kept with the dataset
    (a resume with another backend is refused), and only where a SAM segmenter runs."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    monkeypatch.setenv("VFM_CACHE_DIR", str(tmp_path / "cache"))
    common = ["--task", "everything", "--segmenter", str(tiny_sam_dir), "--points-per-side", "4",
              "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--precision", "fp32", "--quiet",
              "--format", "coco"]
    assert main(["label", str(folder), "--out", str(tmp_path / "torch"), *common]) == 0
    assert main(["label", str(folder), "--out", str(tmp_path / "ov"), "--backend", "openvino", *common]) == 0
    torch_doc = json.loads((tmp_path / "torch" / "coco.json").read_text())
    ov_doc = json.loads((tmp_path / "ov" / "coco.json").read_text())
    assert [a["segmentation"] for a in ov_doc["annotations"]] == [a["segmentation"] for a in torch_doc["annotations"]]
    assert main(["label", str(folder), "--out", str(tmp_path / "ov"), *common]) != 0  # the stored backend differs
    assert main(["label", str(folder), "--task", "tag", "--backend", "openvino", "--out", str(tmp_path / "t"),
                 "--quiet"]) != 0
