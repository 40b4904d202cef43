"""Open-vocabulary detection on tiny offline Grounding DINO / OWLv2 / OWL-ViT checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.ops import batched_nms

from tests.conftest import make_image
from vfm.errors import ModelError, PromptError
from vfm.tasks.detect import Detector, check_threshold


@pytest.fixture(scope="session")
def tiny_owlv2_dir(tmp_path_factory):
    from vfm.testing.tiny_detectors import build_owlv2

    return build_owlv2(tmp_path_factory.mktemp("models") / "tiny-owlv2", seed=0)


@pytest.fixture(scope="session")
def tiny_owlvit_dir(tmp_path_factory):
    from vfm.testing.tiny_detectors import build_owlvit

    return build_owlvit(tmp_path_factory.mktemp("models") / "tiny-owlvit", seed=1)


@pytest.fixture(scope="session")
def gdino(tiny_gdino_dir):
    return Detector.load(str(tiny_gdino_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def owlv2(tiny_owlv2_dir):
    return Detector.load(str(tiny_owlv2_dir), device="cpu", precision="fp32")


def _clip_ref(boxes: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    b = np.minimum(np.maximum(boxes, 0), [w, h, w, h])
    return b, (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])


@pytest.fixture(scope="session")
def tiny_mm_gdino_dir(tmp_path_factory):
    from vfm.testing.tiny_detectors import build_grounding_dino

    return build_grounding_dino(tmp_path_factory.mktemp("models") / "tiny-mm-gdino", seed=0, mm=True)


# ------------------------------------------------------------------------------ Grounding DINO parity
def test_grounding_dino_equals_transformers(gdino, tiny_gdino_dir):
    from transformers import GroundingDinoForObjectDetection

    _check_gdino_parity(gdino, tiny_gdino_dir, GroundingDinoForObjectDetection, bt=0.5, tt=0.3)


def test_mm_grounding_dino_equals_transformers(tiny_mm_gdino_dir):
    """MM-Grounding-DINO goes through the same adapter; its random contrastive head scores lower."""
    from transformers import MMGroundingDinoForObjectDetection

    det = Detector.load(str(tiny_mm_gdino_dir), device="cpu", precision="fp32")
    assert det.family == "mm-grounding-dino"
    _check_gdino_parity(det, tiny_mm_gdino_dir, MMGroundingDinoForObjectDetection, bt=0.04, tt=0.03)


def _check_gdino_parity(gdino, model_dir, model_cls, *, bt: float, tt: float):
    from transformers import AutoProcessor

    img = make_image(120, 200, seed=3)
    classes = ["cat", "remote control", "dog", "cat box"]  # "cat" is also a word of "cat box"
    ours = gdino.detect(img, classes, box_threshold=bt, text_threshold=tt)

    proc = AutoProcessor.from_pretrained(model_dir)
    model = model_cls.from_pretrained(model_dir).eval()
    inputs = proc(images=img, text=classes, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    ref = proc.post_process_grounded_object_detection(
        out, inputs["input_ids"], threshold=bt, text_threshold=tt, target_sizes=[(120, 200)]
    )[0]
    # Our prompt is the processor's prompt token for token.
    ids = inputs["input_ids"][0].tolist()
    chunk = gdino.adapter.chunk_classes(gdino.adapter.class_tokens(classes))
    assert len(chunk) == 1 and chunk[0].input_ids[0].tolist() == ids
    # Spans of each class found independently from the processor's ids (split at '.').
    spans, start = [], 1
    for i, t in enumerate(ids):
        if t == 1012:
            spans.append((start, i))
            start = i + 1
    assert len(spans) == len(classes)
    probs = torch.sigmoid(out.logits[0])
    keep_q = torch.nonzero(probs.max(-1).values > bt).flatten()
    class_max = torch.stack([probs[keep_q, s:e].max(-1).values for s, e in spans], -1)
    has_label = class_max.max(-1).values > tt  # transformers gives these a non-empty phrase
    ref_boxes, inside = _clip_ref(ref["boxes"].numpy(), 120, 200)
    sel = has_label.numpy() & inside
    assert len(ours) == int(sel.sum()) > 0
    np.testing.assert_allclose(ours.xyxy, ref_boxes[sel], atol=1e-4)
    np.testing.assert_allclose(ours.scores, ref["scores"].numpy()[sel], atol=1e-6)
    expected_ids = class_max.argmax(-1).numpy()[sel]
    assert ours.class_ids.tolist() == expected_ids.tolist()
    phrases = [p for p, s in zip(ref["text_labels"], sel) if s]
    for name, phrase in zip(ours.class_names, phrases):
        assert set(name.split()) & set(phrase.replace(".", " ").split())  # the winning tokens are in the phrase


def test_grounding_dino_thresholds_filter(gdino):
    img = make_image(120, 200, seed=3)
    low = gdino.detect(img, "cat, dog", box_threshold=0.0, text_threshold=0.0)
    high = gdino.detect(img, "cat, dog", box_threshold=0.999, text_threshold=0.0)
    assert len(low) == gdino.adapter.model.config.num_queries
    assert len(high) < len(low)
    assert (high.scores > 0.999).all()
    assert set(map(tuple, high.xyxy.round(3))) <= set(map(tuple, low.xyxy.round(3)))


def test_max_detections_keeps_the_best(gdino):
    img = make_image(120, 200, seed=3)
    every = gdino.detect(img, "cat, dog", box_threshold=0.0, text_threshold=0.0)
    top = gdino.detect(img, "cat, dog", box_threshold=0.0, text_threshold=0.0, max_detections=5)
    order = np.argsort(-every.scores, kind="stable")[:5]
    np.testing.assert_allclose(top.scores, every.scores[order])
    np.testing.assert_allclose(top.xyxy, every.xyxy[order])
    for bad in (0, -3, 2.5):
        with pytest.raises(PromptError, match="max_detections"):
            gdino.detect(img, "cat", max_detections=bad)


def test_long_class_list_is_chunked_never_truncated(gdino, tiny_gdino_dir):
    from transformers import AutoProcessor

    # 298 one-token names, then two long names (66 and 100 tokens): greedy packing leaves the last
    # class alone in the last prompt, so with thresholds 0 every query of that prompt is class 299 —
    # detected whatever the random weights; a truncated prompt could never name it.
    classes = [f"w{i}" for i in range(298)] + [" ".join(["an"] * 66), " ".join(["a"] * 100)]
    proc = AutoProcessor.from_pretrained(tiny_gdino_dir)
    full = proc.tokenizer(". ".join(classes) + ".")["input_ids"]
    assert len(full) > 256  # one prompt cannot hold the list: the model reads 256 tokens at most
    chunks = gdino.adapter.chunk_classes(gdino.adapter.class_tokens(classes))
    assert len(chunks) > 1
    assert all(c.input_ids.shape[1] <= 256 for c in chunks)
    assert [i for c in chunks for i in c.class_indices] == list(range(300))  # every class, in order
    assert chunks[-1].class_indices == [299]
    res = gdino.detect(make_image(128, 160, seed=5), classes, box_threshold=0.0, text_threshold=0.0)
    assert 299 in res.class_ids.tolist()  # a class at the very end of the list is detected
    assert res.class_names[res.class_ids.tolist().index(299)] == classes[299]
    for c in chunks:  # every chunk contributes detections
        assert set(c.class_indices) & set(res.class_ids.tolist())
    # merged with per-class NMS: no two boxes of one class overlap above the merge IoU
    keep = batched_nms(torch.from_numpy(res.xyxy), torch.from_numpy(res.scores), torch.from_numpy(res.class_ids), 0.5)
    assert len(keep) == len(res)


def test_backbone_runs_once_for_all_chunks(gdino, monkeypatch):
    backbone = gdino.adapter.model.model.backbone
    calls = []
    original = backbone.forward
    monkeypatch.setattr(backbone, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    classes = [f"w{i}" for i in range(200)]
    assert len(gdino.adapter.chunk_classes(gdino.adapter.class_tokens(classes))) == 2
    gdino.detect(make_image(128, 160), classes, box_threshold=0.9)
    assert len(calls) == 1


# ------------------------------------------------------------------------------ OWL parity
@pytest.mark.parametrize("family", ["owlv2", "owlvit"])
def test_owl_equals_transformers(family, tiny_owlv2_dir, tiny_owlvit_dir, monkeypatch):
    from transformers import AutoProcessor, Owlv2ForObjectDetection, OwlViTForObjectDetection

    import vfm.tasks.detect as detect_mod

    d = tiny_owlv2_dir if family == "owlv2" else tiny_owlvit_dir
    cls = Owlv2ForObjectDetection if family == "owlv2" else OwlViTForObjectDetection
    det = Detector.load(str(d), device="cpu", precision="fp32")
    assert det.family == family
    img = make_image(120, 200, seed=2)
    classes = ["cat", "remote control", "dog"] + [f"w{i}" for i in range(40)]
    monkeypatch.setattr(detect_mod, "OWL_QUERY_CHUNK", 7)  # several chunks of queries, merged exactly
    ours = det.detect(img, classes, box_threshold=0.3)
    proc = AutoProcessor.from_pretrained(d)
    model = cls.from_pretrained(d).eval()
    inputs = proc(images=img, text=[classes], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    ref = proc.post_process_grounded_object_detection(out, threshold=0.3, target_sizes=[(120, 200)])[0]
    ref_boxes, inside = _clip_ref(ref["boxes"].numpy(), 120, 200)
    assert len(ours) == int(inside.sum()) > 0
    np.testing.assert_allclose(ours.xyxy, ref_boxes[inside], atol=1e-4)
    np.testing.assert_allclose(ours.scores, ref["scores"].numpy()[inside], atol=1e-6)
    assert ours.class_ids.tolist() == ref["labels"].numpy()[inside].tolist()
    assert ours.class_names == [classes[i] for i in ours.class_ids]


@pytest.fixture(scope="session")
def tiny_omdet_dir(tmp_path_factory):
    from vfm.testing.tiny_detectors import build_omdet_turbo

    return build_omdet_turbo(tmp_path_factory.mktemp("models") / "tiny-omdet", seed=0)


def test_omdet_turbo_equals_transformers(tiny_omdet_dir):
    from transformers import AutoProcessor, OmDetTurboForObjectDetection

    det = Detector.load(str(tiny_omdet_dir), device="cpu", precision="fp32")
    assert det.family == "omdet-turbo"
    img = make_image(120, 200, seed=3)
    classes = ["cat", "remote control", "dog"]
    ours = det.detect(img, classes, box_threshold=0.3)
    proc = AutoProcessor.from_pretrained(tiny_omdet_dir)
    model = OmDetTurboForObjectDetection.from_pretrained(tiny_omdet_dir).eval()
    inputs = proc(images=img, text=classes, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    ref = proc.post_process_grounded_object_detection(out, text_labels=classes, threshold=0.3, nms_threshold=0.5,
                                                      target_sizes=[(120, 200)])[0]
    ref_boxes, inside = _clip_ref(ref["boxes"].numpy(), 120, 200)
    assert len(ours) == int(inside.sum()) > 0
    np.testing.assert_allclose(ours.xyxy, ref_boxes[inside], atol=1e-3)
    np.testing.assert_allclose(ours.scores, ref["scores"].numpy()[inside], atol=1e-5)
    assert ours.class_names == [n for n, k in zip(ref["text_labels"], inside) if k]
    # a higher threshold keeps a subset; exemplars need OWL
    assert len(det.detect(img, classes, box_threshold=0.9)) <= len(ours)
    with pytest.raises(ModelError, match="needs an OWL model"):
        det.detect_exemplar(img, None, [10, 10, 50, 50])


def test_owl_query_longer_than_text_limit_is_an_error(owlv2):
    with pytest.raises(PromptError, match="tokens long"):
        owlv2.detect(make_image(), ["cat " * 20])


# ------------------------------------------------------------------------------ exemplar
def test_exemplar_detection(owlv2):
    img = make_image(120, 200, seed=4)
    box = (20, 20, 80, 90)
    same = owlv2.detect_exemplar(img, None, box, threshold=0.0, nms_iou=1.0)
    other = owlv2.detect_exemplar(img, img.copy(), box, threshold=0.0, nms_iou=1.0)
    np.testing.assert_allclose(same.xyxy, other.xyxy)
    np.testing.assert_allclose(same.scores, other.scores)
    # The model's own box that best matches the example is among the detections.
    a = owlv2.adapter
    _, q_boxes, _ = a.embed_image(img)
    from torchvision.ops import box_iou

    from vfm.tasks.detect import _center_to_corners, clip_boxes

    corners = clip_boxes(_center_to_corners(q_boxes[0]) * a.box_scale(120, 200), (120, 200))
    best = corners[int(box_iou(corners, torch.tensor([box], dtype=torch.float32))[:, 0].argmax())]
    assert np.abs(same.xyxy - best.numpy()).max(axis=1).min() < 1e-4
    # Thresholds and NMS prune.
    pruned = owlv2.detect_exemplar(img, None, box, threshold=0.5)
    assert len(pruned) < len(same) and (pruned.scores > 0.5).all()


def test_exemplar_errors(gdino, owlv2):
    img = make_image()
    with pytest.raises(ModelError, match="OWL"):
        gdino.detect_exemplar(img, None, (1, 1, 20, 20))
    for bad in [(10, 10, 5, 20), (500, 500, 600, 600), (1, 2, 3), ("a", 1, 2, 3)]:
        with pytest.raises(PromptError):
            owlv2.detect_exemplar(img, None, bad)


# ------------------------------------------------------------------------------ input checks
@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "abc", float("inf")])
def test_absurd_thresholds_are_errors(bad, gdino):
    with pytest.raises(PromptError):
        check_threshold(bad, "box threshold")
    with pytest.raises(PromptError):
        gdino.detect(make_image(), "cat", box_threshold=bad)


def test_class_list_handling(gdino):
    img = make_image()
    for empty in ["", " , ,", []]:
        with pytest.raises(PromptError, match="empty"):
            gdino.detect(img, empty)
    res = gdino.detect(img, "cat, Cat, dog, cat", box_threshold=0.0, text_threshold=0.0)
    assert set(res.class_names) <= {"cat", "dog"}  # duplicates dropped; ids index the parsed list
    assert all(["cat", "dog"][i] == n for i, n in zip(res.class_ids, res.class_names))
    unknown = gdino.detect(img, "xyzzyq", box_threshold=0.0, text_threshold=0.0)  # unknown word -> [UNK] token
    assert set(unknown.class_names) == {"xyzzyq"}


def test_unknown_model_is_an_error():
    with pytest.raises(ModelError):
        Detector.load("no-such-detector")
    with pytest.raises(ModelError, match="not usable to detect"):
        Detector.load("sam-vit-base")


# ------------------------------------------------------------------------------ CLI
def test_cli_detect_json_and_overlay(tiny_gdino_dir, image_path, tmp_path, capsys):
    from vfm.cli.main import main

    out = tmp_path / "out"
    rc = main(["detect", str(image_path), "--model", str(tiny_gdino_dir), "--classes", "cat, remote control",
               "--box-threshold", "0.5", "--precision", "fp32", "--json", "--out", str(out)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "remote control"}]
    assert doc["image"] == {"width": 200, "height": 120, "file_name": image_path.name}
    assert doc["annotations"]
    for ann in doc["annotations"]:
        assert "segmentation" not in ann
        assert ann["category_name"] in ("cat", "remote control")
        assert doc["categories"][ann["category_id"] - 1]["name"] == ann["category_name"]
        assert ann["score"] > 0.5 and len(ann["bbox"]) == 4
    assert (out / "overlay.png").is_file()
    assert json.loads((out / "result.json").read_text()) == doc


def test_cli_detect_vocabulary_file(tiny_owlv2_dir, image_path, tmp_path, capsys):
    from vfm.cli.main import main

    vocab = tmp_path / "classes.txt"
    vocab.write_text("# my classes\ncat\nremote control  # a comment\n\ndog\n")
    rc = main(["detect", str(image_path), "--model", str(tiny_owlv2_dir), "--vocabulary", str(vocab),
               "--max-detections", "3", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in doc["categories"]] == ["cat", "remote control", "dog"]
    assert len(doc["annotations"]) == 3
    scores = [a["score"] for a in doc["annotations"]]
    assert scores == sorted(scores, reverse=True)


def test_cli_detect_exemplar(tiny_owlv2_dir, image_path, capsys):
    from vfm.cli.main import main

    rc = main(["detect", str(image_path), "--model", str(tiny_owlv2_dir), "--exemplar-box", "20,20,80,90",
               "--box-threshold", "0.3", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["categories"] == [{"id": 1, "name": "exemplar"}]
    assert all(a["category_name"] == "exemplar" for a in doc["annotations"])


@pytest.mark.parametrize("argv,message", [
    (["--classes", "cat", "--box-threshold", "7"], "outside 0..1"),
    (["--classes", " , "], "empty"),
    ([], "--classes"),
    (["--exemplar-box", "1,2,30,40"], "OWL"),
    (["--classes", "cat", "--exemplar-image", "x.png"], "--exemplar-box"),
    (["--classes", "cat", "--vocabulary", "v.txt"], "not both"),
    (["--vocabulary", "missing-vocabulary.txt"], "does not exist"),
])
def test_cli_detect_errors(argv, message, tiny_gdino_dir, image_path, capsys):
    from vfm.cli.main import main

    rc = main(["detect", str(image_path), "--model", str(tiny_gdino_dir), *argv])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and len(err.strip().splitlines()) == 1
