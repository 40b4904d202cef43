"""The rearranged ViT layers give transformers' image embeddings exactly."""

from __future__ import annotations

import copy

import pytest
import torch

from vfm.models.sam_encoder import accelerate
from vfm.testing.tiny_models import _reinit, sam_config


def _pair(window: int, hq: bool = False, rel_pos: bool = True):
    from transformers import SamHQModel, SamModel

    torch.manual_seed(0)
    cfg = sam_config(image_size=256, hidden=64, layers=3, heads=4, hq=hq)
    cfg.vision_config.window_size = window
    cfg.vision_config.global_attn_indexes = [1]
    cfg.vision_config.use_rel_pos = rel_pos
    model = (SamHQModel if hq else SamModel)(cfg).eval()
    _reinit(model, 0)
    with torch.no_grad():  # a bias large enough to matter
        for layer in model.vision_encoder.layers:
            if rel_pos:
                layer.attn.rel_pos_h.normal_(0, 0.5)
                layer.attn.rel_pos_w.normal_(0, 0.5)
            layer.attn.qkv.bias.normal_(0, 0.1)
    fast = copy.deepcopy(model)
    assert accelerate(fast) == 3
    return model, fast


@pytest.mark.parametrize("window", [4, 5, 7], ids=["windows fit", "padded windows", "7 of 16"])
def test_embeddings_equal_transformers(window):
    model, fast = _pair(window)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = model.get_image_embeddings(x)
        got = fast.get_image_embeddings(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_global_chunks_are_exact(monkeypatch):
    import vfm.models.sam_encoder as E

    model, fast = _pair(5)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(E, "BIAS_CHUNK_BYTES", 4 * 4 * 256 * 7)  # 7 queries per chunk: many uneven chunks
    with torch.inference_mode():
        torch.testing.assert_close(fast.get_image_embeddings(x), model.get_image_embeddings(x), atol=1e-5, rtol=1e-5)


def test_sam_hq_intermediate_embeddings_equal():
    model, fast = _pair(5, hq=True)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want, want_inter = model.get_image_embeddings(x)
        got, got_inter = fast.get_image_embeddings(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(got_inter, want_inter):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_without_relative_positions():
    model, fast = _pair(5, rel_pos=False)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        torch.testing.assert_close(fast.get_image_embeddings(x), model.get_image_embeddings(x), atol=1e-5, rtol=1e-5)


def test_switch_off_and_loaded_adapters(monkeypatch, tiny_sam_dir):
    from vfm.models.loading import load_promptable

    adapter = load_promptable(str(tiny_sam_dir), device="cpu")
    assert all(getattr(type(layer), "_vfm_fast", False) for layer in adapter.model.vision_encoder.layers)
    model, _ = _pair(4)
    monkeypatch.setenv("VFM_FAST_ENCODER", "0")
    assert accelerate(model) == 0
    assert not any(getattr(type(layer), "_vfm_fast", False) for layer in model.vision_encoder.layers)
