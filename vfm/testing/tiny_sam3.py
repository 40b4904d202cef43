"""A tiny random-weight SAM 3 checkpoint laid out as ``facebook/sam3`` is: a ``sam3_video`` config
(``detector_config`` = Sam3Model, ``tracker_config`` = Sam3TrackerVideoModel) with one weights file,
a Sam3VideoProcessor (image + video processor + CLIP tokenizer; Sam3Processor loads from it too). ``Sam3Model.from_pretrained(DIR)`` reads the
detector out of it, as it does from the hub checkpoint.

Sizes: a 2-layer ViT (hidden 32) on 112x112 inputs (8x8 patches of 14), FPN / DETR / tracker width 128
(the tracker's memory path hard-codes 64 memory channels, as SAM 2's does), 20 queries.
"""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE_SIZE = 112
PATCH = 14
WIDTH = 128


def _spread(model: torch.nn.Module, seed: int, std: float) -> None:
    """Random weights with enough spread that scores and masks differ between prompts (the default
    init makes every query score sigmoid(0) * sigmoid(0))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * std)


def sam3_video_config(image_size: int = IMAGE_SIZE, vocab_size: int = 512, eos: int = 1, bos: int = 0, pad: int = 1):
    from transformers import Sam3VideoConfig

    n = image_size // PATCH
    vision = dict(backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=image_size, patch_size=PATCH, window_size=4,
                                       global_attn_indexes=[1], pretrain_image_size=image_size),
                  fpn_hidden_size=WIDTH, backbone_feature_sizes=[[n * 4, n * 4], [n * 2, n * 2], [n, n]])
    text = dict(model_type="clip_text_model", vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=32, projection_dim=32, eos_token_id=eos, bos_token_id=bos,
                pad_token_id=pad)
    small = dict(hidden_size=WIDTH, num_attention_heads=2, intermediate_size=64)
    detector = dict(model_type="sam3", vision_config=vision, text_config=text,
                    geometry_encoder_config=dict(num_layers=1, **small), detr_encoder_config=dict(num_layers=1, **small),
                    detr_decoder_config=dict(num_layers=2, num_queries=20, **small),
                    mask_decoder_config=dict(hidden_size=WIDTH, num_attention_heads=2))
    tracker = dict(model_type="sam3_tracker_video", vision_config=vision, image_size=image_size,
                   prompt_encoder_config=dict(hidden_size=WIDTH, image_size=image_size, patch_size=PATCH),
                   mask_decoder_config=dict(hidden_size=WIDTH, mlp_dim=256, num_attention_heads=2, iou_head_hidden_dim=64),
                   memory_attention_hidden_size=WIDTH, memory_attention_num_layers=1,
                   memory_attention_feed_forward_hidden_size=256, memory_attention_rope_feat_sizes=[n, n],
                   memory_encoder_hidden_size=WIDTH, memory_encoder_output_channels=64, mask_downsampler_embed_dim=WIDTH,
                   memory_fuser_embed_dim=WIDTH, memory_fuser_intermediate_dim=256, num_maskmem=3,
                   max_object_pointers_in_encoder=4)
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=n * 4 * 2)


def build_sam3(out_dir: str | Path, *, seed: int = 0, image_size: int = IMAGE_SIZE, std: float = 0.05) -> Path:
    """Save a tiny SAM 3 (``sam3_video`` layout) with its processor to ``out_dir``."""
    from transformers import Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3VideoModel, Sam3VideoProcessor

    from vfm.testing.tiny_clip import clip_tokenizer

    tok = clip_tokenizer(max_length=32)
    config = sam3_video_config(image_size, vocab_size=len(tok), eos=tok.eos_token_id, bos=tok.bos_token_id,
                               pad=tok.pad_token_id)
    torch.manual_seed(seed)
    model = Sam3VideoModel(config).eval()
    _spread(model, seed, std)
    out = Path(out_dir)
    model.save_pretrained(out)
    size = {"height": image_size, "width": image_size}
    image_processor = Sam3ImageProcessor(size=size, mask_size={"height": image_size // PATCH * 4, "width": image_size // PATCH * 4})
    video_processor = Sam2VideoVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    # processor_config.json holds both, as facebook/sam3's does: Sam3Processor reads the image part
    processor = Sam3VideoProcessor(image_processor=image_processor, video_processor=video_processor, tokenizer=tok)
    processor.save_pretrained(out)
    return out
