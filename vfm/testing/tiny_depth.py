"""Tiny random-weight depth checkpoints (Depth Anything, DPT, ZoeDepth, Depth Pro) saved with their
image processors, so tests load them exactly like a hub id (``vfm depth IMAGE --model DIR``).

The processors keep the real checkpoints' settings (resize rule, multiple, resampling, mean/std)
at a small input size, so post-processing runs the same code path as on the real models.
"""

from __future__ import annotations

from pathlib import Path

import torch

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _reinit(model: torch.nn.Module, seed: int, std: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def build_depth_anything(out_dir: str | Path, *, seed: int = 0, metric: bool = False, size: int = 56) -> Path:
    """Depth Anything V2 (DINOv2 backbone); ``metric`` as the Metric checkpoints (sigmoid head, max_depth 20)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=size, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
                                 neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8,
                                 **({"depth_estimation_type": "metric", "max_depth": 20} if metric else {}))
    model = DepthAnythingForDepthEstimation(config).eval()
    _reinit(model, seed, std=0.1)
    with torch.no_grad():  # a positive bias before the head's last activation: a map that varies, not all zero
        model.head.conv3.bias.fill_(0.5)
    model.save_pretrained(out)
    DPTImageProcessor(do_resize=True, size={"height": size, "width": size}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      resample=3, do_pad=False, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD).save_pretrained(out)
    return out


def build_dpt(out_dir: str | Path, *, seed: int = 0, size: int = 64) -> Path:
    """DPT (ViT backbone, MiDaS-style relative head), processor as Intel/dpt-large (fixed square resize)."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=size,
                       patch_size=16, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 16, 32, 32],
                       fusion_hidden_size=16, reassemble_factors=[4, 2, 1, 0.5])
    model = DPTForDepthEstimation(config).eval()
    _reinit(model, seed)
    model.save_pretrained(out)
    DPTImageProcessor(do_resize=True, size={"height": size, "width": size}, keep_aspect_ratio=False, ensure_multiple_of=1,
                      resample=3, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(out)
    return out


def build_zoedepth(out_dir: str | Path, *, seed: int = 0, size: int = 64) -> Path:
    """ZoeDepth (BEiT backbone, one metric bin head), processor as Intel/zoedepth-nyu-kitti (padding, multiple of 32)."""
    from transformers import BeitConfig, ZoeDepthConfig, ZoeDepthForDepthEstimation, ZoeDepthImageProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    backbone = BeitConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, image_size=size,
                          patch_size=16, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
                          use_relative_position_bias=True)
    config = ZoeDepthConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
                            reassemble_hidden_size=32, bottleneck_features=16, num_relative_features=8, bin_embedding_dim=16,
                            num_attractors=[4, 4, 4, 4], patch_size=16,
                            bin_configurations=[{"n_bins": 8, "min_depth": 1e-3, "max_depth": 10.0, "name": "nyu"}])
    model = ZoeDepthForDepthEstimation(config).eval()
    model.save_pretrained(out)  # default init: its bin centres must stay ordered for sensible metres
    ZoeDepthImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=True, ensure_multiple_of=32,
                           do_pad=True).save_pretrained(out)
    return out


def build_depth_pro(out_dir: str | Path, *, seed: int = 0, size: int = 64) -> Path:
    """Depth Pro (DINOv2 patch, image and field-of-view encoders), processor as apple/DepthPro-hf."""
    from transformers import DepthProConfig, DepthProForDepthEstimation, DepthProImageProcessor

    torch.manual_seed(seed)
    out = Path(out_dir)
    enc = {"model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
           "intermediate_size": 64, "image_size": size // 2, "patch_size": 16}
    config = DepthProConfig(fusion_hidden_size=16, patch_size=size // 2, intermediate_hook_ids=[1, 0],
                            intermediate_feature_dims=[8, 8], scaled_images_ratios=[0.5, 1.0],
                            scaled_images_overlap_ratios=[0.0, 0.25], scaled_images_feature_dims=[16, 16],
                            use_fov_model=True, image_model_config=enc, patch_model_config=dict(enc), fov_model_config=dict(enc))
    model = DepthProForDepthEstimation(config).eval()
    model.save_pretrained(out)
    DepthProImageProcessor(size={"height": size, "width": size}).save_pretrained(out)
    return out
