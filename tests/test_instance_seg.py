"""Instance segmentation with closed-set checkpoints (vfm segment / label --task instance) and EoMT
semantic / panoptic maps (issue 19 items 2 and 4): the same numbers as transformers' processors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

pytest.importorskip("scipy")  # transformers' Mask2Former / OneFormer modules import it

# Tiny random models score ~0.1-0.4 and their mask logits sit near 0: thresholds that keep instances.
KW = {"mask2former": dict(threshold=0.0, overlap_mask_area_threshold=0.0),
      "oneformer": dict(threshold=0.0, mask_threshold=0.0, overlap_mask_area_threshold=0.0),
      "eomt": dict(threshold=0.0)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from vfm.testing.tiny_clip import build_mask2former, build_oneformer
    from vfm.testing.tiny_segmentation import build_eomt, build_segformer

    root = tmp_path_factory.mktemp("instance-models")
    return {"mask2former": build_mask2former(root / "m2f", seed=0), "oneformer": build_oneformer(root / "one", seed=0),
            "eomt": build_eomt(root / "eomt", seed=0), "eomt-split": build_eomt(root / "eomt-split", seed=0, split=True),
            "segformer": build_segformer(root / "segformer", seed=0)}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("instance-photos") / "p.png"
    Image.fromarray(make_image(72, 100, seed=10)).save(path)
    return path


def _outputs(path, family, image, task):
    """transformers' processor + model, as their model cards show."""
    from transformers import AutoImageProcessor, AutoModelForUniversalSegmentation, AutoProcessor

    proc = (AutoProcessor if family == "oneformer" else AutoImageProcessor).from_pretrained(path)
    model = AutoModelForUniversalSegmentation.from_pretrained(path).eval()
    enc = proc(images=[image], return_tensors="pt", **({"task_inputs": [task]} if family == "oneformer" else {}))
    with torch.no_grad():
        out = model(**enc)
    return proc, model, out


@pytest.mark.parametrize("family", ["mask2former", "oneformer", "eomt"])
def test_instances_equal_transformers(family, models, photo):
    from vfm.tasks.semantic import SemanticModel

    image = Image.open(photo)
    ins = SemanticModel.load(str(models[family]), device="cpu").instances(np.asarray(image), **KW[family])
    proc, model, out = _outputs(models[family], family, image, "instance")
    extra = {"mask2former": {"return_binary_maps": True}, "oneformer": {"task_type": "instance"}, "eomt": {}}[family]
    ref = proc.post_process_instance_segmentation(out, target_sizes=[(72, 100)], **KW[family], **extra)[0]
    seg = ref["segmentation"].numpy()
    masks = [seg[i] > 0.5 if seg.ndim == 3 else seg == s["id"] for i, s in enumerate(ref["segments_info"])]
    ref = [(s, m) for s, m in zip(ref["segments_info"], masks) if m.any()]
    assert len(ins) == len(ref) > 1
    for i, (s, m) in enumerate(ref):
        assert ins.class_names[i] == model.config.id2label[s["label_id"]]
        assert ins.scores[i] == pytest.approx(s["score"], abs=1e-5)
        np.testing.assert_array_equal(ins.mask(i), m)
    x0, y0, x1, y1 = ins.xyxy[0]  # boxes are the masks' tight boxes
    ys, xs = np.nonzero(ins.mask(0))
    assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.mark.parametrize("variant", ["eomt", "eomt-split"])
def test_eomt_semantic_equals_transformers(variant, models, photo):
    """Padded square input, and the sliding window whose crops the processor merges (patch_offsets)."""
    from vfm.tasks.semantic import SemanticModel

    image = Image.open(photo)
    sem = SemanticModel.load(str(models[variant]), device="cpu").semantic(np.asarray(image))
    proc, _, out = _outputs(models[variant], "eomt", image, "semantic")
    if variant == "eomt-split":
        assert out.patch_offsets  # the image really was cut into crops
    ref = proc.post_process_semantic_segmentation(out, target_sizes=[(72, 100)])[0].numpy()
    np.testing.assert_array_equal(sem.labels, ref)
    assert len(np.unique(ref)) > 1


def test_eomt_panoptic_equals_transformers(models, photo):
    from vfm.tasks.semantic import SemanticModel

    image = Image.open(photo)
    kw = dict(threshold=0.0, mask_threshold=0.05, overlap_mask_area_threshold=0.0)
    pan = SemanticModel.load(str(models["eomt"]), device="cpu").panoptic(np.asarray(image), **kw)
    proc, model, out = _outputs(models["eomt"], "eomt", image, "panoptic")
    ref = proc.post_process_panoptic_segmentation(out, target_sizes=[(72, 100)], **kw)[0]
    assert len(pan) == len(ref["segments_info"]) > 1
    for i, s in enumerate(ref["segments_info"]):
        assert pan.class_names[i] == model.config.id2label[s["label_id"]]
        np.testing.assert_array_equal(pan.mask(i), ref["segmentation"].numpy() == s["id"])


def test_segment_task_instance_cli(models, photo, tmp_path, capsys):
    from vfm.results.rle import decode_rle
    from vfm.tasks.semantic import SemanticModel

    out = tmp_path / "out"
    model = str(models["mask2former"])
    assert main(["segment", str(photo), "--task", "instance", "--model", model, "--threshold", "0",
                 "--overlap-threshold", "0", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ins = SemanticModel.load(model, device="cpu").instances(photo, **KW["mask2former"])
    assert [c["name"] for c in doc["categories"]] == SemanticModel.load(model, device="cpu").class_names
    assert len(doc["annotations"]) == len(ins) > 1
    for i, ann in enumerate(doc["annotations"]):
        assert ann["category_name"] == ins.class_names[i] == doc["categories"][ann["category_id"] - 1]["name"]
        np.testing.assert_array_equal(decode_rle(ann["segmentation"]), ins.mask(i))
    assert (out / "overlay.png").is_file() and json.loads((out / "result.json").read_text()) == doc
    # --classes keeps some of the model's classes; ids index the given list
    keep = ins.class_names[0]
    assert main(["segment", str(photo), "--task", "instance", "--model", model, "--threshold", "0",
                 "--overlap-threshold", "0", "--classes", keep, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["categories"] == [{"id": 1, "name": keep}]
    assert len(doc["annotations"]) == ins.class_names.count(keep)
    assert {a["category_id"] for a in doc["annotations"]} == {1}


@pytest.mark.parametrize("argv, message", [
    (["--classes", "unicorn"], "has no class 'unicorn'"),
    (["--point", "5,5"], "takes no prompts (--point)"),
    (["--threshold", "1.5"], "--threshold 1.5 is outside 0..1"),
    (["--model", "SEGFORMER"], "semantic maps only"),
])
def test_segment_task_instance_bad_input_is_one_line(argv, message, models, photo, capsys):
    argv = [str(models["segformer"]) if a == "SEGFORMER" else a for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(models["mask2former"])]
    assert main(["segment", str(photo), "--task", "instance", *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_prompt_options_refused_without_task_instance(photo, capsys):
    assert main(["segment", str(photo), "--point", "5,5", "--classes", "cat"]) != 0
    assert "--classes is an option of --task instance" in capsys.readouterr().err


def test_label_task_instance_writes_the_instances_of_vfm_segment(models, photo, tmp_path, capsys):
    from vfm.tasks.semantic import SemanticModel

    src = photo.parent
    out = tmp_path / "ds"
    model = str(models["eomt"])
    assert main(["label", str(src), "--task", "instance", "--semantic-model", model, "--box-threshold", "0",
                 "--precision", "fp32", "--format", "coco,yolo", "--out", str(out), "--quiet"]) == 0
    coco = json.loads((out / "coco.json").read_text())
    sm = SemanticModel.load(model, device="cpu")
    ins = sm.instances(photo, threshold=0.0)
    assert [c["name"] for c in coco["categories"]] == sm.class_names
    assert len(coco["annotations"]) == len(ins) > 1
    names = [coco["categories"][a["category_id"] - 1]["name"] for a in coco["annotations"]]
    assert sorted(names) == sorted(ins.class_names)
    assert main(["label", str(src), "--task", "instance", "--semantic-model", model, "--format", "semantic",
                 "--out", str(tmp_path / "x")]) != 0
    assert "--task semantic for --format semantic" in capsys.readouterr().err
