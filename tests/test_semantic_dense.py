"""vfm semantic / panoptic / label --task semantic / eval --task semantic (issue 19 items 2 and 3):
parity with transformers' image-segmentation pipeline, the files written, and mIoU by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

pytest.importorskip("scipy")  # transformers' Mask2Former / OneFormer modules import it


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from vfm.testing.tiny_clip import build_mask2former, build_oneformer
    from vfm.testing.tiny_segmentation import build_segformer, build_upernet

    root = tmp_path_factory.mktemp("seg-models")
    return {"mask2former": build_mask2former(root / "m2f", seed=0), "oneformer": build_oneformer(root / "one", seed=0),
            "segformer": build_segformer(root / "segformer", seed=0), "upernet": build_upernet(root / "upernet", seed=0)}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg-photos")
    for i in range(2):
        Image.fromarray(make_image(72 + 8 * i, 100, seed=10 + i)).save(root / f"p{i}.png")
    return root


PANOPTIC_KW = dict(threshold=0.0, mask_threshold=0.05, overlap_mask_area_threshold=0.0)  # the tiny models' scores are ~0.2


def _reference(path, family, subtask, image, **kw):
    """transformers' own result: the image-segmentation pipeline; for OneFormer its processor + model +
    post-processing as its docs show (the pipeline pads the task tokens with the pad token, OneFormerProcessor
    with zeros as the original OneFormer does, and vfm uses the processor)."""
    from transformers import AutoProcessor, OneFormerForUniversalSegmentation, pipeline

    if family != "oneformer":
        return pipeline("image-segmentation", model=str(path), device="cpu")(image, subtask=subtask, **kw)
    proc = AutoProcessor.from_pretrained(path)
    model = OneFormerForUniversalSegmentation.from_pretrained(path).eval()
    with torch.no_grad():
        out = model(**proc(images=[image], task_inputs=[subtask], return_tensors="pt"))
    size = [(image.height, image.width)]
    if subtask == "semantic":
        labels = proc.post_process_semantic_segmentation(out, target_sizes=size)[0].numpy()
        return [{"label": model.config.id2label[int(c)], "mask": labels == c} for c in np.unique(labels)]
    res = proc.post_process_panoptic_segmentation(out, target_sizes=size, **kw)[0]
    seg = res["segmentation"].numpy()
    return [{"label": model.config.id2label[s["label_id"]], "score": s["score"], "mask": seg == s["id"]}
            for s in res["segments_info"]]


@pytest.mark.parametrize("family", ["mask2former", "oneformer", "segformer", "upernet"])
def test_semantic_map_equals_transformers(family, models, photos):
    from vfm.tasks.semantic import SemanticModel

    image = Image.open(photos / "p0.png")
    sem = SemanticModel.load(str(models[family]), device="cpu").semantic(np.asarray(image))
    assert sem.labels.shape == (72, 100)
    ref = _reference(models[family], family, "semantic", image)
    assert sorted(sem.class_names[c] for c in sem.present()) == sorted(r["label"] for r in ref)
    for r in ref:
        np.testing.assert_array_equal(np.asarray(r["mask"]) > 0, sem.labels == sem.class_names.index(r["label"]))


@pytest.mark.parametrize("family", ["mask2former", "oneformer"])
def test_panoptic_segments_equal_transformers(family, models, photos):
    from vfm.tasks.semantic import SemanticModel

    image = Image.open(photos / "p1.png")
    pan = SemanticModel.load(str(models[family]), device="cpu").panoptic(np.asarray(image), **PANOPTIC_KW)
    ref = _reference(models[family], family, "panoptic", image, **PANOPTIC_KW)
    assert len(pan) == len(ref) > 0
    for i, r in enumerate(ref):
        assert pan.class_names[i] == r["label"] and pan.scores[i] == pytest.approx(r["score"], abs=1e-4)
        np.testing.assert_array_equal(pan.mask(i), np.asarray(r["mask"]) > 0)
    covered = np.sum([pan.mask(i) for i in range(len(pan))], axis=0)
    assert covered.max() <= 1  # segments do not overlap


def test_semantic_cli_writes_indexed_png_classes_and_coco_doc(models, photos, tmp_path, capsys):
    from vfm.results.rle import decode_rle
    from vfm.tasks.semantic import SemanticModel

    out = tmp_path / "out"
    assert main(["semantic", str(photos), "--model", str(models["upernet"]), "--out", str(out), "--json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["image"]["file_name"] for d in docs] == ["p0.png", "p1.png"]
    model = SemanticModel.load(str(models["upernet"]), device="cpu")
    for doc in docs:
        folder = out / doc["image"]["file_name"].rsplit(".", 1)[0]
        png = Image.open(folder / "labels.png")
        assert png.mode == "P"
        labels = np.asarray(png)
        np.testing.assert_array_equal(labels, model.semantic(photos / doc["image"]["file_name"]).labels)
        assert (folder / "classes.txt").read_text().splitlines() == model.class_names
        assert len(np.unique(labels)) == len(doc["annotations"]) >= 1
        for ann in doc["annotations"]:  # one RLE per class present; category ids are class index + 1
            assert doc["categories"][ann["category_id"] - 1]["name"] == ann["category_name"]
            np.testing.assert_array_equal(decode_rle(ann["segmentation"]), labels == ann["category_id"] - 1)
        assert sum(c["pixels"] for c in doc["semantic"]["classes"]) == labels.size
        assert (folder / "overlay.png").is_file() and json.loads((folder / "result.json").read_text()) == doc


def test_panoptic_cli_writes_coco_panoptic(models, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["panoptic", str(photos / "p0.png"), "--model", str(models["mask2former"]), "--threshold", "0",
                 "--mask-threshold", "0.05", "--overlap-threshold", "0", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rgb = np.asarray(Image.open(out / "panoptic.png")).astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    pan = json.loads((out / "panoptic.json").read_text())
    segs = pan["annotations"][0]["segments_info"]
    assert pan["annotations"][0]["file_name"] == "panoptic.png" and pan["images"][0]["file_name"] == "p0.png"
    assert len(segs) == len(doc["annotations"]) > 0
    for seg, ann in zip(segs, doc["annotations"]):
        assert (ids == seg["id"]).sum() == seg["area"] == ann["area"]
        assert seg["category_id"] == ann["category_id"] and pan["categories"][seg["category_id"] - 1]["name"] == ann["category_name"]
    assert set(np.unique(ids)) <= {0} | {s["id"] for s in segs}


def test_wrong_models_are_one_line(models, photos, tiny_sam_dir, clip_dir, capsys):
    from vfm.testing.tiny_depth import build_dpt

    assert main(["panoptic", str(photos / "p0.png"), "--model", str(models["segformer"])]) == 1
    err = capsys.readouterr().err
    assert "semantic maps only" in err and "mask2former-coco-panoptic" in err and len(err.strip().splitlines()) == 1
    assert main(["depth", str(photos / "p0.png"), "--model", str(models["segformer"])]) == 1
    assert "not usable to depth" in capsys.readouterr().err
    dpt = build_dpt(photos.parent / "dpt-for-semantic")
    assert main(["semantic", str(photos / "p0.png"), "--model", str(dpt)]) == 1
    assert "not usable to semantic" in capsys.readouterr().err
    assert main(["everything", str(photos / "p0.png"), "--model", str(tiny_sam_dir), "--points-per-side", "2",
                 "--classes", "cat", "--classifier", str(clip_dir), "--semantic-model", str(models["segformer"])]) == 1
    assert "Mask2Former or OneFormer" in capsys.readouterr().err


def test_label_task_semantic_writes_the_maps_of_vfm_semantic(models, photos, tmp_path, capsys):
    from vfm.tasks.semantic import SemanticModel

    out = tmp_path / "out"
    assert main(["label", str(photos), "--task", "semantic", "--semantic-model", str(models["segformer"]), "--precision",
                 "fp32", "--format", "coco,semantic", "--out", str(out), "--quiet"]) == 0
    model = SemanticModel.load(str(models["segformer"]), device="cpu")
    assert (out / "semantic" / "classes.txt").read_text().splitlines() == model.class_names
    for name in ("p0", "p1"):
        np.testing.assert_array_equal(np.asarray(Image.open(out / "semantic" / f"{name}.png")),
                                      model.semantic(photos / f"{name}.png").labels)
    coco = json.loads((out / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == model.class_names
    assert main(["label", str(photos), "--task", "semantic", "--classes", "cat", "--out", str(tmp_path / "x")]) == 1
    assert "model's own classes" in capsys.readouterr().err
    # the semantic dataset scores perfectly against itself, through vfm eval
    assert main(["eval", "--task", "semantic", "--gt", str(out / "semantic"), "--pred", str(out / "semantic"),
                 "--classes", str(out / "semantic" / "classes.txt"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["miou"] == 1.0 and res["pixel_accuracy"] == 1.0 and res["images"] == 2


# ------------------------------------------------------------------------------ vfm eval --task semantic
def _label_png(path, labels):
    Image.fromarray(np.asarray(labels, np.uint8), mode="L").save(path)


def test_miou_against_hand_computed_values(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    _label_png(gt / "x.png", [[0, 0, 1], [1, 255, 2]])
    _label_png(pred / "x.png", [[0, 1, 1], [1, 2, 2]])
    argv = ["eval", "--task", "semantic", "--gt", str(gt), "--pred", str(pred), "--classes", str(tmp_path / "classes.txt"),
            "--json"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["per_class_iou"] == {"a": pytest.approx(0.5), "b": pytest.approx(2 / 3), "c": pytest.approx(1.0), "d": None}
    assert res["miou"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert res["pixel_accuracy"] == pytest.approx(4 / 5) and res["mean_accuracy"] == pytest.approx((0.5 + 1 + 1) / 3)
    # Predictions with their own class order are mapped by name (classes.txt beside them).
    (pred / "classes.txt").write_text("b\na\nc\nd\n")
    _label_png(pred / "x.png", [[1, 0, 0], [0, 2, 2]])
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["miou"] == pytest.approx(res["miou"])


@pytest.mark.parametrize("case, message", [("size", "must have the image's size"), ("value", "has class value 7"),
                                           ("noclasses", "needs --classes"), ("names", "of the same name")])
def test_semantic_eval_bad_input_is_one_line(case, message, tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    (tmp_path / "classes.txt").write_text("a\nb\n")
    _label_png(gt / "x.png", [[0, 7 if case == "value" else 1]])
    _label_png(pred / ("y.png" if case == "names" else "x.png"), [[0, 1, 1]] if case == "size" else [[0, 1]])
    argv = ["eval", "--task", "semantic", "--gt", str(gt), "--pred", str(pred)]
    argv += [] if case == "noclasses" else ["--classes", str(tmp_path / "classes.txt")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
