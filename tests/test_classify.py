"""Zero-shot classification: parity with transformers' own forward, activations, templates, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import make_image
from vfm.cli.main import main
from vfm.errors import ModelError, PromptError
from vfm.results.labels import Labels
from vfm.tasks.classify import Classifier, check_template


@pytest.fixture(scope="module")
def siglip2_dir(tmp_path_factory):
    from vfm.testing.tiny_clip import build_siglip2

    return build_siglip2(tmp_path_factory.mktemp("models") / "tiny-siglip2", seed=2)


@pytest.fixture(scope="module")
def siglip2(siglip2_dir):
    return Classifier.load(str(siglip2_dir), device="cpu")


@pytest.fixture(scope="module")
def clip(clip_dir):
    return Classifier.load(str(clip_dir), device="cpu")


@pytest.fixture(scope="module")
def siglip(siglip_dir):
    return Classifier.load(str(siglip_dir), device="cpu")


LABELS = ["cat", "dog", "remote control", "a red car"]


def reference_probs(model_dir, image, labels, template, siglip):
    """What transformers' own model call gives: processor -> Model(**inputs).logits_per_image."""
    from transformers import AutoModel, AutoProcessor

    proc = AutoProcessor.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    padding = "max_length" if siglip else True
    enc = proc(text=[template.format(x) for x in labels], images=[image], padding=padding, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits_per_image[0]
    return (logits.sigmoid() if siglip else logits.softmax(-1)).numpy()


@pytest.mark.parametrize("kind", ["clip", "siglip", "siglip2"])
@pytest.mark.parametrize("template", ["a photo of a {}.", "{}"])
def test_parity_with_transformers_forward(kind, template, request):
    clf = request.getfixturevalue(kind)
    model_dir = request.getfixturevalue(f"{kind}_dir")
    image = make_image(90, 130, seed=3)
    got = clf.classify(image, LABELS, template=template)
    ref = reference_probs(model_dir, image, LABELS, template, kind != "clip")
    by_name = dict(zip(got.names, got.scores))
    np.testing.assert_allclose([by_name[n] for n in LABELS], ref, rtol=1e-4, atol=1e-6)
    assert got.activation == ("softmax" if kind == "clip" else "sigmoid")
    assert list(got.scores) == sorted(got.scores, reverse=True)


def test_clip_softmax_sums_to_one_and_depends_on_the_list(clip):
    image = make_image(seed=4)
    a = clip.classify(image, "cat, dog, remote control")
    assert a.scores.sum() == pytest.approx(1.0, abs=1e-5)
    b = clip.classify(image, "cat, dog")
    assert dict(zip(b.names, b.scores))["cat"] != pytest.approx(dict(zip(a.names, a.scores))["cat"], abs=1e-6)


def test_siglip_sigmoid_is_per_label(siglip):
    image = make_image(seed=4)
    a = siglip.classify(image, "cat, dog, remote control")
    b = siglip.classify(image, "cat")
    assert dict(zip(a.names, a.scores))["cat"] == pytest.approx(b.scores[0], rel=1e-5)
    assert np.all((a.scores > 0) & (a.scores < 1))
    assert a.scores.sum() != pytest.approx(1.0, abs=1e-3)


def test_embeddings_normalized_and_batch_equals_single(clip):
    images = [make_image(60, 80, seed=s) for s in range(3)]
    batch = clip.embed_images(images)
    assert batch.shape == (3, 24) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, im in enumerate(images):
        np.testing.assert_allclose(clip.embed_images([im])[0], batch[i], atol=1e-5)
    txt = clip.embed_texts(["a photo of a cat.", "dog"])
    assert txt.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    assert clip.embed_images([]).shape == (0, 24)


def test_labels_parsing_duplicates_and_empty(clip):
    image = make_image(seed=1)
    res = clip.classify(image, "cat, Cat, dog,, ")
    assert sorted(res.names) == ["cat", "dog"]
    with pytest.raises(PromptError, match="empty"):
        clip.classify(image, " , ")


@pytest.mark.parametrize("template", ["a photo", "{} and {}", "a {0} photo {}", "{x} {}"])
def test_bad_templates(template):
    with pytest.raises(PromptError):
        check_template(template)


def test_too_long_label_is_an_error_not_truncated(clip):
    with pytest.raises(PromptError, match="tokens long"):
        clip.classify(make_image(seed=1), ["qx" * 45])


def test_directory_without_processor(clip_dir, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(clip_dir / name, bare / name)
    with pytest.raises(ModelError, match="save_pretrained"):
        Classifier.load(str(bare), device="cpu")


def test_wrong_model_family(tiny_sam_dir):
    with pytest.raises(ModelError, match="not usable to classify"):
        Classifier.load(str(tiny_sam_dir), device="cpu")


def test_labels_type():
    lab = Labels(["b", "a", "c"], np.array([0.2, 0.7, 0.1]), "softmax")
    assert lab.names == ["a", "b", "c"]
    assert lab.top(2).names == ["a", "b"]
    assert lab.above(0.15).names == ["a", "b"]
    assert lab.to_json() == {"labels": [{"name": "a", "score": 0.7}, {"name": "b", "score": 0.2}, {"name": "c", "score": 0.1}],
                             "activation": "softmax"}
    with pytest.raises(ValueError):
        Labels(["a"], np.array([0.1, 0.2]), "softmax")
    with pytest.raises(ValueError):
        Labels(["a"], np.array([0.1]), "relu")


def test_cli_json(clip_dir, image_path, capsys):
    rc = main(["classify", str(image_path), "--model", str(clip_dir), "--labels", "cat, dog, remote control",
               "--top-k", "2", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["image"]["width"] == 200 and doc["image"]["height"] == 120
    assert doc["activation"] == "softmax" and doc["model"] == str(clip_dir)
    assert len(doc["labels"]) == 2 and set(doc["labels"][0]) == {"name", "score"}
    assert doc["labels"][0]["score"] >= doc["labels"][1]["score"]
    clf = Classifier.load(str(clip_dir), device="cpu")
    ref = clf.classify(str(image_path), "cat, dog, remote control")
    assert doc["labels"][0] == {"name": ref.names[0], "score": round(float(ref.scores[0]), 6)}


def test_cli_siglip_and_out(siglip_dir, image_path, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["classify", str(image_path), "--model", str(siglip_dir), "--labels", "cat, dog", "--out", str(out), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["activation"] == "sigmoid"
    assert (out / "overlay.png").is_file()
    assert json.loads((out / "result.json").read_text()) == doc


@pytest.mark.parametrize("extra,message", [
    (["--labels", " , "], "empty"),
    (["--labels", "cat", "--template", "no placeholder"], "{}"),
    (["--labels", "cat", "--top-k", "0"], "top-k"),
    (["--labels", "cat", "--model", "no-such-model"], "unknown model"),
])
def test_cli_errors_are_one_line(image_path, capsys, extra, message):
    rc = main(["classify", str(image_path), *extra])
    assert rc == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
