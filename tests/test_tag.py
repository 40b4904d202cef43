"""Tagging: built-in vocabulary, the documented scoring rule, the on-disk embedding cache, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tests.conftest import make_image
from vfm.cli.main import main
from vfm.errors import PromptError
from vfm.tasks.classify import Classifier
from vfm.tasks.tag import GENERIC_PROMPTS, EmbeddingStore, Tagger, builtin_vocabulary

VOCAB = ["cat", "dog", "red", "beach", "remote control", "snowy mountain", "kitchen", "bicycle"]


@pytest.fixture(scope="module")
def clip(clip_dir):
    return Classifier.load(str(clip_dir), device="cpu")


@pytest.fixture(scope="module")
def siglip(siglip_dir):
    return Classifier.load(str(siglip_dir), device="cpu")


def test_builtin_vocabulary_has_1000_unique_real_tags():
    tags = builtin_vocabulary()
    assert len(tags) >= 1000
    assert len({t.lower() for t in tags}) == len(tags)
    assert all(re.fullmatch(r"[a-z][a-z0-9' &./()-]*[a-z)]", t) for t in tags), [t for t in tags if not re.fullmatch(r"[a-z][a-z0-9' &./()-]*[a-z)]", t)]
    for must in ("cat", "dog", "person", "car", "beach", "kitchen", "red", "wooden", "sunset"):
        assert must in tags


def test_clip_scoring_rule(clip, tmp_path):
    tagger = Tagger(clip, VOCAB, cache_dir=tmp_path)
    image = make_image(seed=5)
    labels = tagger.tag(image, threshold=0.0)
    assert len(labels) == len(VOCAB) and labels.activation == "sigmoid"
    # Independently: two-way softmax of the tag prompt against the log-mean-exp of the generic prompts.
    img = torch.from_numpy(clip.embed_images([image]))
    txt = torch.from_numpy(clip.embed_texts([f"a photo of {t}." for t in VOCAB]))
    gen = torch.from_numpy(clip.embed_texts(list(GENERIC_PROMPTS)))
    s = clip.adapter.logit_scale
    e_tag = torch.exp(s * img @ txt.T)[0]
    e_gen = torch.exp(s * img @ gen.T)[0].mean()
    expected = (e_tag / (e_tag + e_gen)).numpy()
    got = dict(zip(labels.names, labels.scores))
    np.testing.assert_allclose([got[t] for t in VOCAB], expected, rtol=1e-4, atol=1e-6)


def test_siglip_scores_are_its_sigmoid(siglip, tmp_path):
    tagger = Tagger(siglip, VOCAB, cache_dir=tmp_path)
    image = make_image(seed=6)
    labels = tagger.tag(image, threshold=0.0)
    ref = siglip.classify(image, VOCAB, template="a photo of {}.")
    np.testing.assert_allclose(labels.scores, ref.scores, rtol=1e-5)
    assert labels.names == ref.names


def test_threshold_and_top_k(clip, tmp_path):
    tagger = Tagger(clip, VOCAB, cache_dir=tmp_path)
    image = make_image(seed=5)
    everything = tagger.tag(image, threshold=0.0)
    cut = float(np.median(everything.scores))
    kept = tagger.tag(image, threshold=cut)
    assert kept.names == [n for n, s in zip(everything.names, everything.scores) if s >= cut]
    assert tagger.tag(image, threshold=0.0, top_k=3).names == everything.names[:3]
    assert len(tagger.tag(image, threshold=1.0)) == 0
    default = tagger.tag(image)
    assert all(s >= 0.5 for s in default.scores)
    for bad in (-0.1, 1.5, float("nan"), "abc"):
        with pytest.raises(PromptError):
            tagger.tag(image, threshold=bad)
    with pytest.raises(PromptError):
        tagger.tag(image, top_k=0)


def test_cache_created_reused_and_keyed_by_vocabulary(clip, tmp_path):
    adapter = clip.adapter
    image = make_image(seed=7)
    first = Tagger(clip, VOCAB, cache_dir=tmp_path)
    calls = adapter.text_forward_calls
    a = first.tag(image, threshold=0.0)
    assert adapter.text_forward_calls > calls
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 1 and first.cache_path == files[0]

    calls = adapter.text_forward_calls
    second = Tagger(clip, VOCAB, cache_dir=tmp_path)  # a fresh tagger: only the disk cache can help
    b = second.tag(image, threshold=0.0)
    assert adapter.text_forward_calls == calls
    assert b.names == a.names
    np.testing.assert_allclose(b.scores, a.scores, rtol=1e-6)

    third = Tagger(clip, VOCAB + ["zebra"], cache_dir=tmp_path)
    third.tag(image)
    assert adapter.text_forward_calls > calls
    assert len(list(tmp_path.glob("*.npz"))) == 2

    other_template = Tagger(clip, VOCAB, cache_dir=tmp_path, template="a picture of {}")
    other_template.tag(image)
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert not list(tmp_path.glob(".tmp-*"))


def test_resaved_model_gets_a_new_cache_entry(tmp_path):
    from vfm.testing.tiny_clip import build_clip

    model_dir = build_clip(tmp_path / "model", seed=0)
    cache = tmp_path / "cache"
    Tagger(Classifier.load(str(model_dir), device="cpu"), VOCAB, cache_dir=cache).tag(make_image(seed=1))
    build_clip(model_dir, seed=3)  # same directory and config, different weights
    clf = Classifier.load(str(model_dir), device="cpu")
    Tagger(clf, VOCAB, cache_dir=cache).tag(make_image(seed=1))
    assert clf.adapter.text_forward_calls > 0
    assert len(list(cache.glob("*.npz"))) == 2


def test_corrupt_cache_file_is_recomputed(clip, tmp_path):
    image = make_image(seed=8)
    tagger = Tagger(clip, VOCAB, cache_dir=tmp_path)
    good = tagger.tag(image, threshold=0.0)
    path = tagger.cache_path
    path.write_bytes(b"not an npz file")
    calls = clip.adapter.text_forward_calls
    again = Tagger(clip, VOCAB, cache_dir=tmp_path).tag(image, threshold=0.0)
    assert clip.adapter.text_forward_calls > calls
    np.testing.assert_allclose(again.scores, good.scores, rtol=1e-6)
    with np.load(path) as z:  # rewritten with valid content
        assert z["embeddings"].shape[0] == len(VOCAB) + len(GENERIC_PROMPTS)


def test_store_rejects_wrong_key_and_shape(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.put("k1", np.ones((3, 4), np.float32))
    assert store.get("k1", 3).shape == (3, 4)
    assert store.get("k1", 4) is None
    store.path("k2").write_bytes(store.path("k1").read_bytes())  # a file whose stored key differs
    assert store.get("k2", 3) is None


def test_unwritable_cache_only_disables_caching(clip, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    tagger = Tagger(clip, VOCAB, cache_dir=blocker / "sub")
    labels = tagger.tag(make_image(seed=1), threshold=0.0)
    assert len(labels) == len(VOCAB) and tagger.cache_path is None


def test_cache_dir_from_environment(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_CACHE_DIR", str(tmp_path / "vfmcache"))
    tagger = Tagger(clip, VOCAB)
    tagger.tag(make_image(seed=1))
    assert tagger.cache_path.parent == tmp_path / "vfmcache" / "tag-embeddings"


def test_builtin_vocabulary_end_to_end(clip, tmp_path):
    tagger = Tagger(clip, None, cache_dir=tmp_path)
    labels = tagger.tag(make_image(seed=2), threshold=0.0, top_k=7)
    assert len(labels) == 7 and set(labels.names) <= set(builtin_vocabulary())


def test_vocabulary_forms(clip, tmp_path):
    f = tmp_path / "vocab.txt"
    f.write_text("# mine\ncat\ndog  # pet\n\nCat\n")
    assert Tagger(clip, str(f), use_cache=False).vocabulary == ["cat", "dog"]
    assert Tagger(clip, f, use_cache=False).vocabulary == ["cat", "dog"]
    assert Tagger(clip, "cat, dog", use_cache=False).vocabulary == ["cat", "dog"]
    with pytest.raises(PromptError):
        Tagger(clip, [" ", ""], use_cache=False)


def test_cli_json(clip_dir, image_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VFM_CACHE_DIR", str(tmp_path / "c"))
    vocab = tmp_path / "v.txt"
    vocab.write_text("\n".join(VOCAB))
    rc = main(["tag", str(image_path), "--model", str(clip_dir), "--vocabulary", str(vocab), "--threshold", "0",
               "--top-k", "4", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["activation"] == "sigmoid" and doc["threshold"] == 0.0 and doc["model"] == str(clip_dir)
    assert doc["image"] == {"width": 200, "height": 120, "file_name": "image.png"}
    assert len(doc["labels"]) == 4 and all(lab["name"] in VOCAB for lab in doc["labels"])
    scores = [lab["score"] for lab in doc["labels"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("extra,message", [
    (["--threshold", "2"], "outside 0..1"),
    (["--top-k", "0"], "at least 1"),
    (["--vocabulary", "/no/such/file.txt"], "does not exist"),
])
def test_cli_errors(clip_dir, image_path, capsys, extra, message):
    rc = main(["tag", str(image_path), "--model", str(clip_dir), *extra])
    assert rc == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
