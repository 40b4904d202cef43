"""Tiny random-weight checkpoints, built offline and saved like a user's download.

Tests and benchmarks load them through the same path a hub id takes (``--model DIR``). Sizes are
kept small (hidden 32-64, 1-2 layers) so a checkpoint builds in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def _reinit(model: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Re-initialise weights with a realistic spread (SamConfig's vision std is 1e-10)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif "weight" in name and ("norm" in name or "layer_norm" in name):
                p.fill_(1.0)
            elif "bias" in name:
                p.zero_()


def _write_sam_processor(out: Path, longest: int) -> None:
    (out / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "SamImageProcessor",
        "do_resize": True, "size": {"longest_edge": longest}, "resample": 2,
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        "do_pad": True, "pad_size": {"height": longest, "width": longest}, "mask_size": {"longest_edge": longest // 4},
    }))


def sam_config(*, image_size: int = 1024, hidden: int = 64, layers: int = 2, heads: int = 2,
               out_channels: int = 32, hq: bool = False, vit_b: bool = False):
    """A SAM (or SAM-HQ) config. ``vit_b=True`` gives the real ViT-B encoder/decoder sizes."""
    if hq:
        from transformers import SamHQConfig as Config, SamHQMaskDecoderConfig as Dec, SamHQPromptEncoderConfig as Pe, SamHQVisionConfig as Vis
    else:
        from transformers import SamConfig as Config, SamMaskDecoderConfig as Dec, SamPromptEncoderConfig as Pe, SamVisionConfig as Vis
    if vit_b:
        vision = Vis(image_size=image_size)  # defaults are ViT-B: 768 hidden, 12 layers
        vision_kw = {}
        return Config(vision_config=vision.to_dict(), prompt_encoder_config=Pe(image_size=image_size).to_dict(),
                      mask_decoder_config=Dec().to_dict(), **vision_kw)
    global_attn = [1] if layers > 1 else [0]
    vision = Vis(
        image_size=image_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        output_channels=out_channels, window_size=4, global_attn_indexes=global_attn, mlp_dim=hidden * 2,
        num_pos_feats=out_channels // 2,
    )
    pe = Pe(hidden_size=out_channels, image_size=image_size, image_embedding_size=image_size // 16, mask_input_channels=8)
    dec_kw = dict(hidden_size=out_channels, mlp_dim=out_channels * 2, num_hidden_layers=2, num_attention_heads=2,
                  iou_head_hidden_dim=out_channels)
    if hq:
        dec_kw["vit_dim"] = hidden
    dec = Dec(**dec_kw)
    return Config(vision_config=vision.to_dict(), prompt_encoder_config=pe.to_dict(), mask_decoder_config=dec.to_dict())


def build_sam(out_dir: str | Path, *, seed: int = 0, hq: bool = False, processor: bool = True, **config_kw) -> Path:
    """Build a tiny SAM / SAM-HQ checkpoint in ``out_dir`` (config, safetensors, processor config)."""
    if hq:
        from transformers import SamHQModel as Model
    else:
        from transformers import SamModel as Model
    torch.manual_seed(seed)
    config = sam_config(hq=hq, **config_kw)
    model = Model(config).eval()
    _reinit(model, seed)
    out = Path(out_dir)
    model.save_pretrained(out)
    if processor:
        _write_sam_processor(out, config.vision_config.image_size)
    return out


def _tiny_hiera_vision(image_size: int, *, fpn_hidden_size: int):
    """A 4-stage Hiera backbone with 16-128 channels (one or two blocks a stage) and its FPN."""
    from transformers import Sam2HieraDetConfig, Sam2VisionConfig

    backbone = Sam2HieraDetConfig(
        hidden_size=16, num_attention_heads=1, blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
        image_size=[image_size, image_size], window_positional_embedding_background_size=[4, 4],
    )
    return Sam2VisionConfig(backbone_config=backbone.to_dict(), backbone_channel_list=[128, 64, 32, 16],
                            fpn_hidden_size=fpn_hidden_size,
                            backbone_feature_sizes=[[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2])


def build_sam2(out_dir: str | Path, *, seed: int = 0, image_size: int = 256, processor: bool = True) -> Path:
    """Build a tiny SAM 2 image checkpoint (Hiera backbone with small stages)."""
    from transformers import Sam2Config, Sam2Model

    torch.manual_seed(seed)
    vision = _tiny_hiera_vision(image_size, fpn_hidden_size=32)
    config = Sam2Config(
        vision_config=vision.to_dict(),
        prompt_encoder_config={"hidden_size": 32, "image_size": image_size, "patch_size": 16, "mask_input_channels": 8},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                             "iou_head_hidden_dim": 32},
    )
    model = Sam2Model(config).eval()
    _reinit(model, seed)
    out = Path(out_dir)
    model.save_pretrained(out)
    if processor:
        (out / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "Sam2ImageProcessorFast", "size": {"height": image_size, "width": image_size},
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
        }))
    return out


def sam2_video_config(*, image_size: int = 256, hiera_t: bool = False):
    """A SAM 2.1 video config: tiny (hidden 16-128: transformers fixes the memory width at 64
    and reshapes object pointers only when the model width is a larger multiple of it, as in the real checkpoints) or, with ``hiera_t``, Hiera-T's real sizes."""
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VisionConfig

    if hiera_t:  # facebook/sam2.1-hiera-tiny: Hiera-T (blocks 1-2-7-2, embed 96), 256-d memory attention
        backbone = Sam2HieraDetConfig(blocks_per_stage=[1, 2, 7, 2], embed_dim_per_stage=[96, 192, 384, 768],
                                      num_attention_heads_per_stage=[1, 2, 4, 8], global_attention_blocks=[5, 7, 9],
                                      window_positional_embedding_background_size=[7, 7], image_size=[image_size] * 2)
        vision = Sam2VisionConfig(backbone_config=backbone.to_dict(), backbone_channel_list=[768, 384, 192, 96],
                                  backbone_feature_sizes=[[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2])
        return Sam2VideoConfig(vision_config=vision.to_dict(), image_size=image_size,
                               prompt_encoder_config={"image_size": image_size},
                               memory_attention_rope_feat_sizes=[image_size // 16] * 2)
    vision = _tiny_hiera_vision(image_size, fpn_hidden_size=128)
    return Sam2VideoConfig(
        vision_config=vision.to_dict(), image_size=image_size,
        prompt_encoder_config={"hidden_size": 128, "image_size": image_size, "patch_size": 16, "mask_input_channels": 8},
        mask_decoder_config={"hidden_size": 128, "mlp_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                             "iou_head_hidden_dim": 32},
        memory_attention_hidden_size=128, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[image_size // 16] * 2, memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64, memory_fuser_num_layers=1,
    )


def build_sam2_video(out_dir: str | Path, *, seed: int = 0, image_size: int = 256, hiera_t: bool = False,
                     processor: bool = True) -> Path:
    """Build a SAM 2.1 video checkpoint (``Sam2VideoModel``) with random weights and its processor files."""
    from transformers import Sam2ImageProcessor, Sam2VideoModel, Sam2VideoProcessor, Sam2VideoVideoProcessor

    torch.manual_seed(seed)
    model = Sam2VideoModel(sam2_video_config(image_size=image_size, hiera_t=hiera_t)).eval()
    _reinit(model, seed)
    out = Path(out_dir)
    model.save_pretrained(out)
    if processor:
        size = {"height": image_size, "width": image_size}
        Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=size, mask_size={"height": image_size // 4, "width": image_size // 4}),
                           video_processor=Sam2VideoVideoProcessor(size=size)).save_pretrained(out)
    return out
