"""Closed-set perception (issue 19 item 4): detectors and classifiers with their own classes, through
the same commands, result types and labeling engine; the numbers of transformers' pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

DETECTORS = ("detr", "conditional-detr", "deformable-detr", "rt-detr", "rt-detr-v2", "d-fine")


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    from vfm.testing.tiny_closed_set import build_detector

    root = tmp_path_factory.mktemp("closed-det")
    return {f: build_detector(root / f, f, seed=0) for f in DETECTORS}


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    from vfm.testing.tiny_closed_set import build_classifier

    root = tmp_path_factory.mktemp("closed-cls")
    return {f: build_classifier(root / f, f, seed=0) for f in ("vit", "convnext")}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(make_image(70, 90, seed=5)).save(path)
    return path


@pytest.mark.parametrize("family", DETECTORS)
def test_detector_equals_the_object_detection_pipeline(family, detectors, photo):
    from transformers import pipeline

    from vfm.tasks.detect import Detector

    det = Detector.load(str(detectors[family]), device="cpu")  # dispatches to the closed-set detector
    assert det.family == family and det.class_names == ["cat", "dog", "car", "person"]
    res = det.detect(photo, box_threshold=0.0)
    ref = pipeline("object-detection", model=str(detectors[family]), device="cpu")(Image.open(photo), threshold=0.0)
    assert len(res) == len(ref) > 0
    assert res.class_names == [r["label"] for r in ref]
    np.testing.assert_allclose(res.scores, [r["score"] for r in ref], atol=1e-6)
    boxes = [[r["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")] for r in ref]  # the pipeline rounds to int
    np.testing.assert_allclose(res.xyxy, boxes, atol=1.0)


def test_classes_filter_and_rename(detectors, photo):
    from vfm.errors import PromptError
    from vfm.tasks.detect import Detector

    det = Detector.load(str(detectors["rt-detr-v2"]), device="cpu")
    everything = det.detect(photo, box_threshold=0.0)
    some = det.detect(photo, "car: automobile, cat", box_threshold=0.0)
    keep = [n in ("car", "cat") for n in everything.class_names]
    assert len(some) == sum(keep)
    np.testing.assert_allclose(some.xyxy, everything.xyxy[keep])
    assert some.class_names == [{"car": "automobile", "cat": "cat"}[n] for n, k in zip(everything.class_names, keep) if k]
    assert [["automobile", "cat"][i] for i in some.class_ids] == some.class_names
    with pytest.raises(PromptError, match="no class 'zebra'"):
        det.detect(photo, "zebra")
    with pytest.raises(PromptError, match="OWL model"):
        det.detect_exemplar(photo, None, (1, 1, 9, 9))


def test_cli_detect_without_classes_uses_the_models_own(detectors, photo, capsys, tmp_path):
    assert main(["detect", str(photo), "--model", str(detectors["d-fine"]), "--box-threshold", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in doc["categories"]] == ["cat", "dog", "car", "person"]
    assert doc["annotations"] and all(doc["categories"][a["category_id"] - 1]["name"] == a["category_name"]
                                      for a in doc["annotations"])
    from vfm.testing.tiny_detectors import build_grounding_dino

    gdino = build_grounding_dino(tmp_path / "gdino", seed=0)
    assert main(["detect", str(photo), "--model", str(gdino)]) == 1  # open vocabulary: the classes are needed
    assert "closed-set detectors" in capsys.readouterr().err


def test_label_and_ground_run_closed_set_detectors(detectors, photo, tiny_sam_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["label", str(photo.parent), "--task", "detect", "--classes", "cat, dog, car, person", "--detector",
                 str(detectors["rt-detr"]), "--box-threshold", "0.0", "--out", str(out), "--quiet"]) == 0
    coco = json.loads((out / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog", "car", "person"] and coco["annotations"]
    assert main(["ground", str(photo), "--detector", str(detectors["detr"]), "--segmenter", str(tiny_sam_dir),
                 "--classes", "cat, dog, car, person", "--box-threshold", "0", "--precision", "fp32", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["annotations"] and all("segmentation" in a for a in doc["annotations"])


@pytest.mark.parametrize("family", ["vit", "convnext"])
def test_classifier_equals_the_image_classification_pipeline(family, classifiers, photo, capsys):
    from transformers import pipeline

    ref = pipeline("image-classification", model=str(classifiers[family]), device="cpu")(Image.open(photo), top_k=None)
    assert main(["classify", str(photo), "--model", str(classifiers[family]), "--top-k", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["activation"] == "softmax"
    assert [d["name"] for d in doc["labels"]] == [r["label"] for r in ref]
    np.testing.assert_allclose([d["score"] for d in doc["labels"]], [r["score"] for r in ref], atol=1e-6)
    assert main(["classify", str(photo), "--model", str(classifiers[family]), "--json"]) == 0  # default top 5 of 4
    assert len(json.loads(capsys.readouterr().out)["labels"]) == 4
    assert main(["classify", str(photo), "--model", str(classifiers[family]), "--classes", "dog: canine, cat", "--json"]) == 0
    some = {d["name"]: d["score"] for d in json.loads(capsys.readouterr().out)["labels"]}
    full = {r["label"]: r["score"] for r in ref}
    assert some == {"canine": pytest.approx(full["dog"], abs=1e-6), "cat": pytest.approx(full["cat"], abs=1e-6)}
    assert main(["classify", str(photo), "--model", str(classifiers[family]), "--classes", "zebra"]) == 1
    assert "no class 'zebra'" in capsys.readouterr().err


def test_closed_set_models_listed_and_refused_where_they_do_not_fit(classifiers, photo, capsys):
    from vfm.models.registry import list_models

    aliases = {s.alias: s for s in list_models()}
    assert aliases["rtdetr-v2-r18"].task == "detect" and aliases["vit-base-patch16-224"].task == "classify"
    assert main(["tag", str(photo), "--model", str(classifiers["vit"])]) == 1  # tags need CLIP/SigLIP
    assert "CLIP or SigLIP" in capsys.readouterr().err
