"""SAM 3 concept segmentation on a tiny random-weight checkpoint laid out as facebook/sam3 (``sam3_video``):
vfm's instances equal transformers' own Sam3Model call + post_process_instance_segmentation (text, text
with positive and negative exemplars, exemplars alone; several classes as one prompt each); the same
results through `vfm segment --text`, `vfm ground --segmenter sam3`, `vfm label --task ground
--segmenter sam3` and the server's /ground with `--text-segmenter`; bad input as one-line errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from vfm.cli.main import main
from vfm.testing.synthetic_video import frame_and_masks

W, H = 160, 120
TH = 0.26  # the tiny model's scores sit around 0.25-0.29: this keeps some instances and drops others


@pytest.fixture(scope="module")
def image():
    return frame_and_masks(0, W, H, 2, 0)[0]


@pytest.fixture(scope="module")
def image_path(image, tmp_path_factory):
    path = tmp_path_factory.mktemp("sam3-img") / "shapes.png"
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def concept(tiny_sam3_dir):
    from vfm.tasks.concept import ConceptSegmenter

    return ConceptSegmenter.load(str(tiny_sam3_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def reference(tiny_sam3_dir):
    from transformers import Sam3Model, Sam3Processor

    model = Sam3Model.from_pretrained(str(tiny_sam3_dir)).eval()
    processor = Sam3Processor.from_pretrained(str(tiny_sam3_dir))

    def run(pixels, text=None, exemplars=(), threshold=TH):
        kwargs = {"images": pixels, "text": text, "return_tensors": "pt"}
        if exemplars:
            kwargs["input_boxes"] = [[list(b) for b, _ in exemplars]]
            kwargs["input_boxes_labels"] = [[int(p) for _, p in exemplars]]
        inputs = processor(**kwargs)
        with torch.no_grad():
            out = model(**{k: v for k, v in inputs.items() if k != "original_sizes"})
        res = processor.post_process_instance_segmentation(out, threshold=threshold,
                                                           target_sizes=inputs["original_sizes"].tolist())[0]
        order = np.argsort(-res["scores"].numpy(), kind="stable")
        return res["masks"].numpy().astype(bool)[order], res["boxes"].numpy()[order], res["scores"].numpy()[order]

    return run


def assert_same(res, ref):
    masks, boxes, scores = ref
    assert len(res) == len(scores) > 0
    np.testing.assert_allclose(res.scores, scores, atol=1e-5)
    np.testing.assert_allclose(res.xyxy, boxes, atol=1e-3)
    inter = (res.masks & masks).sum((1, 2))
    union = (res.masks | masks).sum((1, 2))
    assert (inter / np.maximum(union, 1)).min() >= 0.99


CASES = {
    "text": dict(text="red circle"),
    "text+exemplars": dict(text="red circle", exemplars=[((10, 10, 60, 50), True), ((70, 20, 150, 100), False)]),
    "exemplar": dict(exemplars=[((10, 10, 60, 50), True)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_instances_as_transformers(concept, reference, image, case):
    kw = CASES[case]
    res = concept.segment(image, threshold=TH, **kw)
    assert_same(res, reference(image, **kw))
    assert set(res.class_names) == {kw.get("text", "visual")}


def test_threshold_filters_and_text_matters(concept, image):
    low = concept.segment(image, text="red circle", threshold=0.0)
    high = concept.segment(image, text="red circle", threshold=TH)
    assert len(low) == 20 > len(high) > 0  # every query at 0; fewer above the threshold
    other = concept.segment(image, text="dog", threshold=0.0)
    assert not np.allclose(other.scores, low.scores)


def test_ground_is_one_prompt_per_class(concept, reference, image):
    res = concept.ground(image, "red circle, green box: box", box_threshold=TH)
    parts = [reference(image, text=t) for t in ("red circle", "green box")]
    scores = np.concatenate([p[2] for p in parts])
    names = ["red circle"] * len(parts[0][2]) + ["box"] * len(parts[1][2])
    order = np.argsort(-scores, kind="stable")
    np.testing.assert_allclose(res.scores, scores[order], atol=1e-5)
    assert res.class_names == [names[i] for i in order]
    assert sorted(set(res.class_ids.tolist())) == [0, 1]
    top = concept.ground(image, "red circle, green box", box_threshold=TH, max_detections=3)
    assert len(top) == 3 and np.all(np.diff(top.scores) <= 0)


def test_cli_segment_text_writes_the_masks(capsys, tiny_sam3_dir, image_path, concept, image, tmp_path):
    out = tmp_path / "out"
    code = main(["segment", str(image_path), "--model", str(tiny_sam3_dir), "--text", "red circle", "--threshold", str(TH),
                 "--precision", "fp32", "--out", str(out), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    ref = concept.segment(image, text="red circle", threshold=TH)
    assert doc["categories"] == [{"id": 1, "name": "red circle"}] or doc["categories"][0]["name"] == "red circle"
    assert len(doc["annotations"]) == len(ref)
    for ann, mask in zip(doc["annotations"], ref.masks):
        assert (mask_utils.decode(ann["segmentation"]).astype(bool) == mask).all()
    assert (out / "overlay.png").exists() and (out / "result.json").exists()
    code = main(["segment", str(image_path), "--model", str(tiny_sam3_dir), "--exemplar", "10,10,60,50",
                 "--exemplar", "70,20,150,100,-", "--threshold", str(TH), "--precision", "fp32", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    ref = concept.segment(image, exemplars=[((10, 10, 60, 50), True), ((70, 20, 150, 100), False)], threshold=TH)
    assert len(doc["annotations"]) == len(ref) and doc["categories"][0]["name"] == "visual"


@pytest.mark.parametrize("extra, message", [
    (["--text", "  "], "the text prompt is empty"),
    (["--exemplar", "10,10,600,50"], "reaches outside the 160x120 image"),
    (["--exemplar", "10,10,5,50"], "is empty"),
    (["--exemplar", "10,10,60"], "exemplar"),
    (["--exemplar", "10,10,60,50,-"], "negative exemplars alone"),
    (["--text", "cat", "--point", "5,5"], "--point does not go with --text"),
    (["--text", "cat", "--task", "instance"], "do not go with --task instance"),
    (["--text", "cat", "--threshold", "2"], "outside 0..1"),
])
def test_cli_bad_concept_prompts(capsys, tiny_sam3_dir, image_path, extra, message):
    assert main(["segment", str(image_path), "--model", str(tiny_sam3_dir), *extra]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_text_to_a_model_without_a_text_encoder(capsys, tiny_sam_dir, image_path, tiny_sam3_dir):
    assert main(["segment", str(image_path), "--model", str(tiny_sam_dir), "--text", "cat"]) != 0
    assert "no text encoder" in capsys.readouterr().err
    assert main(["segment", str(image_path), str(image_path), "--model", str(tiny_sam3_dir),
                 "--exemplar", "1,1,9,9"]) != 0
    assert "pixels of one image" in capsys.readouterr().err


def test_cli_ground_and_label_with_sam3_alone(capsys, tiny_sam3_dir, gdino_dir, image_path, concept, image, tmp_path):
    ref = concept.ground(image, "red circle, green box", box_threshold=TH)
    base = ["--segmenter", str(tiny_sam3_dir), "--classes", "red circle, green box", "--box-threshold", str(TH),
            "--precision", "fp32"]
    assert main(["ground", str(image_path), *base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [a["score"] for a in doc["annotations"]] == pytest.approx(ref.scores.tolist(), abs=1e-5)
    assert main(["ground", str(image_path), *base, "--detector", str(gdino_dir)]) != 0
    assert "drop --detector" in capsys.readouterr().err
    assert main(["ground", str(image_path), *base, "--text-threshold", "0.2"]) != 0
    assert "--text-threshold is Grounding DINO's" in capsys.readouterr().err
    out = tmp_path / "label"
    assert main(["label", str(image_path.parent), "--task", "ground", *base, "--out", str(out), "--quiet"]) == 0
    coco = json.loads((out / "coco.json").read_text())
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    assert [cats[a["category_id"]] for a in coco["annotations"]] == ref.class_names
    for ann, mask in zip(coco["annotations"], ref.masks):
        assert (mask_utils.decode(ann["segmentation"]).astype(bool) == mask).all()
    assert main(["label", str(image_path.parent), "--task", "ground", *base, "--detector", str(gdino_dir),
                 "--out", str(tmp_path / "l2"), "--quiet"]) != 0
    assert "drop --detector" in capsys.readouterr().err


def test_models_lists_sam3(capsys):
    assert main(["models", "--task", "ground"]) == 0
    out = capsys.readouterr().out
    assert "sam3" in out and "facebook/sam3" in out


def test_server_ground_with_text_segmenter(tiny_sam3_dir, tiny_sam_dir, image, concept):
    from vfm.server import ServerConfig, create_app
    from vfm.server.testing import serve_in_thread

    app = create_app(ServerConfig(segmenter=str(tiny_sam_dir), text_segmenter=str(tiny_sam3_dir), device="cpu",
                                  precision="fp32"))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    with serve_in_thread(app) as url:
        r = requests.post(f"{url}/v1/images", files={"file": ("shapes.png", buf.getvalue(), "image/png")})
        image_id = r.json()["image_id"]
        r = requests.post(f"{url}/v1/images/{image_id}/ground", json={"classes": ["red circle", "green box"],
                                                                      "box_threshold": TH})
        assert r.status_code == 200, r.text
        ref = concept.ground(image, "red circle, green box", box_threshold=TH)
        assert [a["score"] for a in r.json()["annotations"]] == pytest.approx(ref.scores.tolist(), abs=1e-5)
        r = requests.post(f"{url}/v1/images/{image_id}/ground", json={"classes": ["cat"], "text_threshold": 0.2})
        assert 400 <= r.status_code < 500 and "Grounding DINO" in r.text


def test_serve_refuses_a_text_segmenter_that_is_not_sam3(capsys, tiny_sam_dir):
    from vfm.cli.main import build_parser
    from vfm.cli.serve_cmd import build_config
    from vfm.errors import PromptError

    args = build_parser().parse_args(["serve", "--text-segmenter", str(tiny_sam_dir)])
    with pytest.raises(PromptError, match="not a SAM 3 model"):
        build_config(args)


# ---------------------------------------------------------------------------------------- tracker
@pytest.fixture(scope="module")
def tracker_reference(tiny_sam3_dir, tmp_path_factory):
    """transformers' own Sam3TrackerModel + Sam3TrackerProcessor on the tracker weights of the checkpoint,
    saved as a ``sam3_tracker`` checkpoint (which transformers loads directly)."""
    from transformers import Sam3ImageProcessor, Sam3TrackerModel, Sam3TrackerProcessor

    from vfm.models.registry import resolve
    from vfm.models.sam3 import load_sam3_tracker

    out = tmp_path_factory.mktemp("sam3-tracker") / "tracker"
    load_sam3_tracker(resolve(str(tiny_sam3_dir)), {"model_type": "sam3_video"}).save_pretrained(out)
    processor = Sam3TrackerProcessor(image_processor=Sam3ImageProcessor.from_pretrained(str(tiny_sam3_dir)))
    processor.save_pretrained(out)
    return out, Sam3TrackerModel.from_pretrained(str(out)).eval(), processor


def test_tracker_weights_are_the_checkpoints(tiny_sam3_dir, tracker_reference):
    from safetensors.torch import load_file

    _, tracker, _ = tracker_reference
    stored = load_file(str(tiny_sam3_dir / "model.safetensors"))
    # transformers 5.25 writes the tracker's keys with its prefix twice (tracker_model.tracker_model.*)
    tracker_keys = {}
    for key, value in stored.items():
        while key.startswith("tracker_model."):
            key = key[len("tracker_model."):]
            tracker_keys[key] = value
    mine = tracker.state_dict()
    decoder = [k for k in mine if k.startswith(("prompt_encoder.", "mask_decoder."))]
    assert decoder and all(torch.equal(mine[k], tracker_keys[k]) for k in decoder)
    backbone = [k for k in mine if k.startswith("vision_encoder.backbone.")]
    assert backbone and all(torch.equal(mine[k], stored["detector_model." + k]) for k in backbone)  # one shared backbone
    neck = [k for k in mine if k.startswith("vision_encoder.neck.")]
    assert neck and all(torch.equal(mine[k], stored["tracker_neck." + k[len("vision_encoder.neck."):]]) for k in neck)


@pytest.mark.parametrize("prompt", [dict(points=[[50, 40]], labels=[1]), dict(points=[[50, 40], [100, 80]], labels=[1, 0]),
                                    dict(box=[20, 10, 90, 70])])
def test_tracker_masks_equal_transformers(tiny_sam3_dir, tracker_reference, image, prompt):
    from vfm.tasks.prompts import Prompt
    from vfm.tasks.segment import Segmenter

    _, model, processor = tracker_reference
    kw = {}
    if "points" in prompt:
        kw.update(input_points=[[prompt["points"]]], input_labels=[[prompt["labels"]]])
    else:
        kw.update(input_boxes=[[prompt["box"]]])
    inputs = processor(images=image, return_tensors="pt", **kw)
    with torch.no_grad():
        out = model(**{k: v for k, v in inputs.items() if k != "original_sizes"}, multimask_output=False)
    ref = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0, 0].numpy().astype(bool)
    seg = Segmenter.load(str(tiny_sam3_dir), device="cpu", precision="fp32")
    p = Prompt(points=np.array(prompt["points"]) if "points" in prompt else None,
               labels=np.array(prompt["labels"]) if "labels" in prompt else None, box=prompt.get("box"))
    res = seg.predict_batch([p], image=image, multimask=False, return_logits=False)
    mine = res.mask_array()[0]
    assert (mine & ref).sum() / (mine | ref).sum() >= 0.99  # the image is resized as SAM 2 is, not by the processor
    assert res.scores[0] == pytest.approx(float(out.iou_scores[0, 0, 0]), abs=1e-4)


def test_cli_clicks_on_sam3_and_a_detector_only_checkpoint(capsys, tiny_sam3_dir, image_path, tmp_path):
    from transformers import Sam3Model, Sam3Processor

    assert main(["segment", str(image_path), "--model", str(tiny_sam3_dir), "--point", "50,40", "--multimask",
                 "--precision", "fp32", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["annotations"]) == 3
    detector_only = tmp_path / "detector-only"
    Sam3Model.from_pretrained(str(tiny_sam3_dir)).save_pretrained(detector_only)
    Sam3Processor.from_pretrained(str(tiny_sam3_dir)).save_pretrained(detector_only)
    assert main(["segment", str(image_path), "--model", str(detector_only), "--point", "50,40"]) != 0
    err = capsys.readouterr().err.strip()
    assert "without the tracker" in err and len(err.splitlines()) == 1
    assert main(["segment", str(image_path), "--model", str(detector_only), "--text", "red circle", "--threshold",
                 str(TH), "--precision", "fp32", "--quiet"]) == 0
