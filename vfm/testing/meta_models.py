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


def meta_mobile_sam(*, seed: int = 0):
    """MobileSAM's ``Sam`` (``mobile_sam``): a small TinyViT (widths 16-32-64-320, one block a stage,
    windows 7-7-14-7 as released) at MobileSAM's fixed 1024 input; SAM's decoder at its real 256 width
    (MobileSAM's neck is fixed at 256 channels)."""
    from mobile_sam import modeling

    encoder = modeling.TinyViT(img_size=1024, in_chans=3, num_classes=1000, embed_dims=[16, 32, 64, 320], depths=[1, 1, 2, 1],
                               num_heads=[1, 2, 2, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, drop_rate=0.0,
                               drop_path_rate=0.0, use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3)
    prompt = modeling.PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16)
    decoder = modeling.MaskDecoder(num_multimask_outputs=3, transformer=modeling.TwoWayTransformer(
        depth=2, embedding_dim=256, mlp_dim=512, num_heads=8), transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=64)
    sam = modeling.Sam(encoder, prompt, decoder, pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD)
    randomize(sam, seed, std=0.02)
    with torch.no_grad():  # BatchNorm statistics as after training, not the identity
        g = torch.Generator().manual_seed(seed + 1)
        for m in sam.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))
    return sam.eval()  # eval() after the weights: TinyViT caches its attention bias table there


def meta_sam2(*, seed: int = 0, video: bool = False, std: float = 0.02):
    """Meta's ``SAM2Base`` from ``sam2``'s own SAM 2.1 Hiera-T config (the smallest size vfm recognises:
    Hiera's head counts and global blocks are not in the weights), with one memory-attention and one
    fuser layer (video-only parts, left out of the image model); ``build_sam2``'s default post-processing.
    ``video=True`` gives the ``SAM2VideoPredictor`` (``build_sam2_video_predictor``) instead."""
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    overrides = ["++model.memory_attention.num_layers=1", "++model.memory_encoder.fuser.num_layers=1"]
    build = build_sam2_video_predictor if video else build_sam2
    model = build("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", mode="eval", hydra_overrides_extra=overrides)
    return randomize(model, seed, std=std)
