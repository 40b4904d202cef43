"""transformers' SamModel / SamHQModel from a Meta-format SAM / SAM-HQ state dict.

The architecture is read off the weights' shapes: width, depth, patch and input size, heads (from
the relative-position tables, whose width is the head dimension), window size and which blocks
attend globally (their tables span the whole grid), MLP widths, the decoder's depth and widths.
One thing is not in the weights: the mask decoder's head count, 8 in every released SAM, SAM-HQ
and MobileSAM checkpoint.
"""

from __future__ import annotations

import re

import torch

from vfm.models.meta.sam_keys import meta_to_hf

DECODER_HEADS = 8


def _count(state: dict, pattern: str) -> int:
    found = {int(m[1]) for k in state if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def vision_config_from_meta(state: dict) -> dict:
    """SamVisionConfig arguments for Meta's ViT image encoder weights."""
    proj = state["image_encoder.patch_embed.proj.weight"]
    width, patch = int(proj.shape[0]), int(proj.shape[-1])
    grid = int(state["image_encoder.pos_embed"].shape[1])
    depth = _count(state, r"^image_encoder\.blocks\.(\d+)\.")
    rel = [state.get(f"image_encoder.blocks.{i}.attn.rel_pos_h") for i in range(depth)]
    if any(r is None for r in rel):
        raise ValueError("the image encoder has no relative-position tables (Meta's SAM always uses them)")
    head_dim = int(rel[0].shape[1])
    global_blocks = [i for i, r in enumerate(rel) if r.shape[0] == 2 * grid - 1]
    windows = {(int(r.shape[0]) + 1) // 2 for i, r in enumerate(rel) if i not in global_blocks}
    if len(windows) > 1:
        raise ValueError(f"the image encoder's windowed blocks use different window sizes {sorted(windows)}")
    return dict(
        hidden_size=width, num_hidden_layers=depth, num_attention_heads=width // head_dim, patch_size=patch,
        image_size=grid * patch, window_size=windows.pop() if windows else 14, global_attn_indexes=global_blocks,
        mlp_dim=int(state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]),
        output_channels=int(state["image_encoder.neck.0.weight"].shape[0]),
        qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in state, use_rel_pos=True,
        num_pos_feats=int(state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"].shape[1]),
        layer_norm_eps=1e-6,
    )


def decoder_configs_from_meta(state: dict, image_size: int, patch_size: int) -> tuple[dict, dict]:
    """SamPromptEncoderConfig and SamMaskDecoderConfig arguments for Meta's prompt encoder + mask decoder."""
    tokens = state["mask_decoder.mask_tokens.weight"]
    dim = int(tokens.shape[1])
    prompt = dict(hidden_size=dim, image_size=image_size, patch_size=patch_size,
                  mask_input_channels=int(state["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
                  num_point_embeddings=_count(state, r"^prompt_encoder\.point_embeddings\.(\d+)\."))
    q = state["mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"]
    decoder = dict(
        hidden_size=dim, num_hidden_layers=_count(state, r"^mask_decoder\.transformer\.layers\.(\d+)\."),
        mlp_dim=int(state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
        num_attention_heads=DECODER_HEADS, attention_downsample_rate=dim // int(q.shape[0]),
        num_multimask_outputs=int(tokens.shape[0]) - 1,
        iou_head_depth=_count(state, r"^mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
        iou_head_hidden_dim=int(state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
    )
    if "mask_decoder.hf_token.weight" in state:
        decoder["vit_dim"] = int(state["mask_decoder.compress_vit_feat.0.weight"].shape[0])
    return prompt, decoder


def build_model(cls, config, hf_state: dict, vision_encoder: torch.nn.Module | None = None):
    """``cls(config)`` with ``hf_state`` loaded strictly, without a random initialisation first.

    ``vision_encoder`` (loaded already) replaces the model's own, for encoders transformers lacks.
    """
    with torch.device("meta"):
        model = cls(config)
    if vision_encoder is not None:
        model.vision_encoder = vision_encoder
        hf_state = {**hf_state, **{f"vision_encoder.{k}": v for k, v in vision_encoder.state_dict().items()}}
    result = model.load_state_dict(hf_state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        what = f"misses {len(missing)} weights (e.g. {missing[0]})" if missing else \
            f"has {len(result.unexpected_keys)} unexpected weights (e.g. {result.unexpected_keys[0]})"
        raise ValueError(f"the checkpoint {what} for a {cls.__name__} of its shapes")
    if any(t.is_meta for t in model.buffers()):
        # non-persistent buffers (position ids, RoPE tables) are computed in __init__: build for real instead
        model = cls(config)
        if vision_encoder is not None:
            model.vision_encoder = vision_encoder
        model.load_state_dict(hf_state, strict=True)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"{cls.__name__} kept {len(left)} uninitialised tensors (e.g. {left[0]})")
    return model.eval()


def sam_from_meta(state: dict):
    """A SamModel (or SamHQModel, for SAM-HQ weights) holding Meta's ViT SAM ``state``."""
    hq = "mask_decoder.hf_token.weight" in state
    if hq:
        from transformers import SamHQConfig as Config, SamHQModel as Model
    else:
        from transformers import SamConfig as Config, SamModel as Model
    vision = vision_config_from_meta(state)
    prompt, decoder = decoder_configs_from_meta(state, vision["image_size"], vision["patch_size"])
    config = Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    return build_model(Model, config, meta_to_hf(state))
