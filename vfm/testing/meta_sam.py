"""Meta's reference `segment_anything` on the same weights as a transformers SamModel (tests, benches).

The reference runs as published, on the real torchvision (``batched_nms``, ``box_area``, ``resize``,
``to_pil_image``). Weights are converted from transformers' key names to Meta's
(:func:`vfm.models.meta.sam_keys.hf_to_meta`), loaded strictly.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from vfm.models.meta.sam_keys import hf_to_meta


def meta_sam_from_hf(hf_model) -> Any:
    """Meta's ``Sam`` with the architecture of ``hf_model.config`` and its weights (strict load)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    cfg = hf_model.config
    v, p, d = cfg.vision_config, cfg.prompt_encoder_config, cfg.mask_decoder_config
    encoder = ImageEncoderViT(
        depth=v.num_hidden_layers, embed_dim=v.hidden_size, img_size=v.image_size, mlp_ratio=v.mlp_dim / v.hidden_size,
        norm_layer=partial(torch.nn.LayerNorm, eps=v.layer_norm_eps), num_heads=v.num_attention_heads,
        patch_size=v.patch_size, qkv_bias=v.qkv_bias, use_rel_pos=v.use_rel_pos, global_attn_indexes=v.global_attn_indexes,
        window_size=v.window_size, out_chans=v.output_channels,
    )
    prompt = PromptEncoder(
        embed_dim=p.hidden_size, image_embedding_size=(p.image_embedding_size, p.image_embedding_size),
        input_image_size=(p.image_size, p.image_size), mask_in_chans=p.mask_input_channels,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=d.num_multimask_outputs,
        transformer=TwoWayTransformer(depth=d.num_hidden_layers, embedding_dim=d.hidden_size, mlp_dim=d.mlp_dim,
                                      num_heads=d.num_attention_heads, attention_downsample_rate=d.attention_downsample_rate),
        transformer_dim=d.hidden_size, iou_head_depth=d.iou_head_depth, iou_head_hidden_dim=d.iou_head_hidden_dim,
    )
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    sam.load_state_dict(hf_to_meta(hf_model.state_dict()), strict=True)
    return sam.eval()


def meta_predictor(hf_model):
    """A reference ``SamPredictor`` on ``hf_model``'s weights."""
    from segment_anything import SamPredictor

    return SamPredictor(meta_sam_from_hf(hf_model))


def meta_generator(hf_model, **kwargs):
    """A reference ``SamAutomaticMaskGenerator`` on ``hf_model``'s weights."""
    from segment_anything import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(meta_sam_from_hf(hf_model), **kwargs)
