"""Tiny random-weight DINOv2 / DINOv3 ViT checkpoints, built offline.

Each builder saves the model and its image-processor config with ``save_pretrained`` so that
``Embedder.load(DIR)`` / ``vfm embed --model DIR`` loads it exactly like a hub checkpoint
(``facebook/dinov2-small``: Dinov2Model + BitImageProcessor; DINOv3: DINOv3ViTModel with register
tokens + DINOv3ViTImageProcessor).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vfm.testing.tiny_clip import _reinit


def build_dinov2(out_dir: str | Path, *, seed: int = 0, image_size: int = 28, patch_size: int = 7, hidden: int = 32,
                 layers: int = 1) -> Path:
    """A tiny Dinov2Model (CLS + 16 patch tokens at 28x28) with a BitImageProcessor as the hub's."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2, mlp_ratio=2,
                          image_size=image_size, patch_size=patch_size)
    model = Dinov2Model(config).eval()
    _reinit(model, seed)
    model.save_pretrained(out)
    BitImageProcessor(size={"shortest_edge": image_size + 4}, crop_size={"height": image_size, "width": image_size},
                      do_center_crop=True, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                      do_convert_rgb=True).save_pretrained(out)
    return out


def build_dinov3(out_dir: str | Path, *, seed: int = 0, image_size: int = 32, patch_size: int = 8, hidden: int = 32,
                 layers: int = 1, registers: int = 2) -> Path:
    """A tiny DINOv3ViTModel (CLS + register tokens + patch tokens) with its image processor."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = DINOv3ViTConfig(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                             num_attention_heads=2, image_size=image_size, patch_size=patch_size,
                             num_register_tokens=registers)
    model = DINOv3ViTModel(config).eval()
    _reinit(model, seed)
    model.save_pretrained(out)
    from transformers.models.dinov3_vit.image_processing_dinov3_vit import DINOv3ViTImageProcessor

    DINOv3ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(out)
    return out
