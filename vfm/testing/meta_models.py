"""Tiny random-weight models built with the reference code itself (Meta's ``segment_anything``,
``segment_anything_hq``, ``sam2`` and MobileSAM's ``mobile_sam``), saved as Meta-format files.

Tests load these files through ``--model FILE.pth`` and compare vfm's masks with the reference
predictor on the very same model object.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

PIXEL_MEAN = [123.675, 116.28, 103.53]
PIXEL_STD = [58.395, 57.12, 57.375]


def randomize(model: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Seeded weights with a realistic spread (norm weights near 1, zero biases)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif name.endswith("weight"):  # norms (LayerNorm, BatchNorm)
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:  # zero-mean biases keep the masks' logits spatially varied
                p.zero_()
    return model.eval()


def _decoder(modeling, hq: bool, dim: int = 32, vit_dim: int = 64):
    kw = dict(num_multimask_outputs=3, transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=8),
              transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=32)
    return modeling.MaskDecoderHQ(vit_dim=vit_dim, **kw) if hq else modeling.MaskDecoder(**kw)


def meta_sam(*, hq: bool = False, seed: int = 0, image_size: int = 256):
    """Meta's ``Sam`` (``segment_anything``, or ``segment_anything_hq`` with ``hq``): a 3-block ViT,
    window 4, block 1 global, 2 heads of 32; decoder width 32."""
    if hq:
        from segment_anything_hq import modeling
    else:
        from segment_anything import modeling
    encoder = modeling.ImageEncoderViT(
        depth=3, embed_dim=64, img_size=image_size, mlp_ratio=2.0, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=2, patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=[1], window_size=4, out_chans=32)
    prompt = modeling.PromptEncoder(embed_dim=32, image_embedding_size=(image_size // 16,) * 2,
                                    input_image_size=(image_size,) * 2, mask_in_chans=16)
    sam = modeling.Sam(encoder, prompt, _decoder(modeling, hq), pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD)
    return randomize(sam, seed)


def save(model: torch.nn.Module, path: str | Path, *, wrap: bool = False) -> Path:
    """``torch.save`` the state dict as the released files are (SAM 2's under ``"model"``)."""
    path = Path(path)
    state = model.state_dict()
    torch.save({"model": state} if wrap else state, path)
    return path
