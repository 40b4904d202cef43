"""Model registry: aliases, hub ids, local directories, offline errors, strict loading, `vfm models`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from vfm.errors import ModelError, ModelNotFoundError
from vfm.models.registry import is_cached, list_models, resolve
from vfm.tasks.segment import Segmenter

REQUIRED_ALIASES = ["sam-vit-base", "sam-vit-large", "sam-vit-huge", "slimsam-77", "slimsam-50", "sam-hq-vit-base",
                    "sam2.1-hiera-tiny", "sam2.1-hiera-small", "sam2.1-hiera-base-plus", "sam2.1-hiera-large"]


def test_required_aliases_are_segmenters():
    aliases = {s.alias: s for s in list_models("segment")}
    for a in REQUIRED_ALIASES:
        assert a in aliases
        r = resolve(a, task="segment")
        assert r.source == aliases[a].hub_id and not r.is_local


def test_local_directory_family(tiny_sam_dir, tiny_sam_hq_dir, tiny_sam2_dir):
    assert resolve(str(tiny_sam_dir)).family == "sam"
    assert resolve(str(tiny_sam_hq_dir)).family == "sam-hq"
    assert resolve(str(tiny_sam2_dir)).family == "sam2"


def test_unknown_name():
    with pytest.raises(ModelError, match="unknown model 'not-a-model'.*sam-vit-base"):
        resolve("not-a-model")


def test_wrong_task():
    with pytest.raises(ModelError, match="not usable to segment"):
        resolve("clip-vit-base-32", task="segment")


def test_offline_hub_id_error_names_model_and_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    from vfm.models import registry

    registry.hub_online.cache_clear()
    with pytest.raises(ModelNotFoundError) as e:
        Segmenter.load("sam-vit-base")
    msg = str(e.value)
    assert "'sam-vit-base'" in msg and "hf download facebook/sam-vit-base" in msg and "save_pretrained" in msg
    with pytest.raises(ModelNotFoundError, match="someorg/some-sam"):
        resolve("someorg/some-sam")
    registry.hub_online.cache_clear()


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        resolve(str(tmp_path))


def test_missing_processor_config_derives_preprocessing(tiny_sam_dir, tmp_path, image_array):
    d = tmp_path / "noproc"
    shutil.copytree(tiny_sam_dir, d)
    (d / "preprocessor_config.json").unlink()
    a = Segmenter.load(str(tiny_sam_dir), precision="fp32")
    b = Segmenter.load(str(d), precision="fp32")
    assert a.model.prep == b.model.prep and b.model.prep.image_size == 256
    ra = a.predict(points=[(30, 40)], image=image_array)
    rb = b.predict(points=[(30, 40)], image=image_array)
    assert (ra.masks == rb.masks).all()


def test_missing_weights_fail_strictly(tiny_sam_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    d = tmp_path / "broken"
    shutil.copytree(tiny_sam_dir, d)
    weights = d / "model.safetensors"
    state = load_file(weights)
    dropped = next(k for k in state if k.startswith("mask_decoder."))
    del state[dropped]
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ModelError, match="missing 1 weights"):
        Segmenter.load(str(d))


def test_unsupported_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="model_type 'bert'"):
        resolve(str(tmp_path))


def test_cached_flag_reads_hf_cache(monkeypatch, tmp_path):
    snap = tmp_path / "models--facebook--sam-vit-base" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    refs = tmp_path / "models--facebook--sam-vit-base" / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    assert is_cached("facebook/sam-vit-base")
    assert not is_cached("facebook/sam-vit-large")


def test_vfm_models_cli_lists_aliases():
    out = subprocess.run([sys.executable, "-m", "vfm.cli", "models", "--json"], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    by = {r["alias"]: r for r in rows}
    assert set(REQUIRED_ALIASES) <= set(by)
    assert by["sam-vit-base"]["hub_id"] == "facebook/sam-vit-base" and by["sam-vit-base"]["cached"] in (True, False)
    text = subprocess.run([sys.executable, "-m", "vfm.cli", "models", "--task", "segment"], capture_output=True, text=True, check=True).stdout
    assert "cached" in text.splitlines()[0] and "sam2.1-hiera-tiny" in text
