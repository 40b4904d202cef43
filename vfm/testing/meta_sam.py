"""Meta's reference `segment_anything` on the same weights as a transformers SamModel (tests, benches).

The reference runs as published, on the real torchvision (``batched_nms``, ``box_area``, ``resize``,
``to_pil_image``). Weights are converted from transformers' key names to Meta's (the inverse of
transformers' SAM conversion), loaded strictly.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import torch


_RULES = [
    (r"^vision_encoder\.", "image_encoder."),
    (r"^image_encoder\.layers\.", "image_encoder.blocks."),
    (r"^(image_encoder\.blocks\.\d+)\.layer_norm(\d)", r"\1.norm\2"),
    (r"^image_encoder\.patch_embed\.projection", "image_encoder.patch_embed.proj"),
    (r"^image_encoder\.neck\.conv1", "image_encoder.neck.0"),
    (r"^image_encoder\.neck\.layer_norm1", "image_encoder.neck.1"),
    (r"^image_encoder\.neck\.conv2", "image_encoder.neck.2"),
    (r"^image_encoder\.neck\.layer_norm2", "image_encoder.neck.3"),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.layers\.(\d+)", lambda m: f"{m[1]}.layers.{int(m[2]) + 1}"),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.proj_in", r"\1.layers.0"),
    (r"(iou_prediction_head|output_hypernetworks_mlps\.\d+)\.proj_out", r"\1.layers.__LAST__"),
    (r"(transformer\.layers\.\d+)\.layer_norm(\d)", r"\1.norm\2"),
    (r"transformer\.layer_norm_final_attn", "transformer.norm_final_attn"),
    (r"mask_decoder\.upscale_conv1", "mask_decoder.output_upscaling.0"),
    (r"mask_decoder\.upscale_layer_norm", "mask_decoder.output_upscaling.1"),
    (r"mask_decoder\.upscale_conv2", "mask_decoder.output_upscaling.3"),
    (r"prompt_encoder\.mask_embed\.conv1", "prompt_encoder.mask_downscaling.0"),
    (r"prompt_encoder\.mask_embed\.layer_norm1", "prompt_encoder.mask_downscaling.1"),
    (r"prompt_encoder\.mask_embed\.conv2", "prompt_encoder.mask_downscaling.3"),
    (r"prompt_encoder\.mask_embed\.layer_norm2", "prompt_encoder.mask_downscaling.4"),
    (r"prompt_encoder\.mask_embed\.conv3", "prompt_encoder.mask_downscaling.6"),
    (r"prompt_encoder\.point_embed\.", "prompt_encoder.point_embeddings."),
    (r"prompt_encoder\.shared_embedding\.positional_embedding", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"),
]


def hf_to_meta_state_dict(hf_state: dict[str, torch.Tensor], mlp_depth: dict[str, int]) -> dict[str, torch.Tensor]:
    """Rename a transformers SamModel state dict to Meta's names (drops the duplicate image PE)."""
    out = {}
    for key, value in hf_state.items():
        if key == "shared_image_embedding.positional_embedding":
            continue
        new = key
        for pattern, repl in _RULES:
            new = re.sub(pattern, repl, new)
        if "__LAST__" in new:
            prefix = new.split(".layers.__LAST__")[0]
            new = new.replace("__LAST__", str(mlp_depth[prefix.split("mask_decoder.")[-1]] - 1))
        out[new] = value
    return out


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
    depth = {"iou_prediction_head": d.iou_head_depth}
    depth.update({f"output_hypernetworks_mlps.{i}": 3 for i in range(d.num_multimask_outputs + 1)})
    hf_state = hf_model.state_dict()
    image_pe = hf_state["shared_image_embedding.positional_embedding"]
    point_pe = hf_state["prompt_encoder.shared_embedding.positional_embedding"]
    if not torch.equal(image_pe, point_pe):
        raise ValueError("the transformers model's image and prompt positional embeddings differ; Meta's SAM shares one")
    state = hf_to_meta_state_dict(hf_state, depth)
    sam.load_state_dict(state, strict=True)
    return sam.eval()


def meta_predictor(hf_model):
    """A reference ``SamPredictor`` on ``hf_model``'s weights."""
    from segment_anything import SamPredictor

    return SamPredictor(meta_sam_from_hf(hf_model))


def meta_generator(hf_model, **kwargs):
    """A reference ``SamAutomaticMaskGenerator`` on ``hf_model``'s weights."""
    from segment_anything import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(meta_sam_from_hf(hf_model), **kwargs)
