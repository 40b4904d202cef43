"""transformers' Sam2Model from a Meta-format SAM 2 / 2.1 file (``sam2.1_hiera_tiny.pt`` ...).

Key mapping (Meta's ``sam2`` package on the left; the file keeps its weights under ``"model"``):

==========================================  =================================================
``image_encoder.trunk.``                    ``vision_encoder.backbone.``
``...blocks.N.norm1|norm2``                 ``...blocks.N.layer_norm1|layer_norm2``
``...patch_embed.proj``                     ``...patch_embed.projection``
``image_encoder.neck.convs.N.conv``         ``vision_encoder.neck.convs.N``
``sam_prompt_encoder.``                     ``prompt_encoder.`` (renamed as for SAM, :mod:`.sam_keys`)
``sam_prompt_encoder.point_embeddings.N``   rows of ``prompt_encoder.point_embed.weight``
``sam_mask_decoder.``                       ``mask_decoder.`` (as for SAM; attention ``out_proj`` -> ``o_proj``)
MLP ``layers.0 | 1..D-2 | D-1``             ``proj_in | layers.0..D-3 | proj_out`` (every MLP, the trunk's too)
``no_mem_embed``                            ``no_memory_embedding``
memory attention / encoder, object pointers, ``no_mem_pos_enc``, ``mask_downsample``: video-only, left out
==========================================  =================================================

:func:`hf_to_meta_sam2` is the inverse (round trip tested, image and video). Widths, stages and the FPN
are read off the weights. Hiera's head counts, global-attention blocks and
window sizes are not in them: they come from the released configurations (T, S, B+, L), matched
by width and blocks per stage.
"""

from __future__ import annotations

import re

import torch

from vfm.models.meta.sam import build_model
from vfm.models.meta.sam_keys import KeyMap, meta_to_hf

#: (embed dim, blocks per stage) -> (initial heads, global-attention blocks, window size per stage)
RELEASED_HIERA = {
    (96, (1, 2, 7, 2)): (1, (5, 7, 9), (8, 4, 14, 7)),  # hiera_tiny
    (96, (1, 2, 11, 2)): (1, (7, 10, 13), (8, 4, 14, 7)),  # hiera_small
    (112, (2, 3, 16, 3)): (2, (12, 16, 20), (8, 4, 14, 7)),  # hiera_base_plus
    (144, (2, 6, 36, 4)): (2, (23, 33, 43), (8, 4, 16, 8)),  # hiera_large
}
IMAGE_SIZE = 1024
_VIDEO_ONLY = ("memory_attention.", "memory_encoder.", "maskmem_tpos_enc", "obj_ptr_proj.", "obj_ptr_tpos_proj.",
               "no_obj_ptr", "no_obj_embed_spatial", "no_mem_pos_enc", "mask_downsample.")
_MLP = re.compile(r"^(.*(?:\.mlp|mlps\.\d+|_head))\.layers\.(\d+)\.(weight|bias)$")
#: the image model's own names (the prompt encoder and mask decoder are renamed as SAM's, sam_keys.SAM_KEYS)
IMAGE_KEYS = KeyMap([
    ("image_encoder.trunk.blocks.{}.norm{}.", "vision_encoder.backbone.blocks.{}.layer_norm{}."),
    ("image_encoder.trunk.patch_embed.proj.", "vision_encoder.backbone.patch_embed.projection."),
    ("image_encoder.trunk.", "vision_encoder.backbone."),
    ("image_encoder.neck.convs.{}.conv.", "vision_encoder.neck.convs.{}."),
    ("no_mem_embed", "no_memory_embedding"),
])


def _count(state: dict, pattern: str) -> int:
    found = {int(m[1]) for k in state if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def meta_to_hf_sam2(state: dict) -> dict:
    """Rename the image-model part of a Meta SAM 2 state dict to transformers' Sam2Model names."""
    from vfm.models.meta.sam_keys import _MLP as SAM_MLP

    renamed: dict[str, torch.Tensor] = {}
    points = {}
    for key, value in state.items():
        if key.startswith(_VIDEO_ONLY):
            continue
        if m := re.match(r"^sam_prompt_encoder\.point_embeddings\.(\d+)\.weight$", key):
            points[int(m[1])] = value
            continue
        new = re.sub(r"^sam_prompt_encoder\.", "prompt_encoder.", key)
        new = re.sub(r"^sam_mask_decoder\.", "mask_decoder.", new)
        renamed[new] = value
    # MLPs SAM does not have (Hiera's, the two-way transformer's, the object-score head): layers.i -> proj_in/...
    depth: dict[str, int] = {}
    for key in renamed:
        if (m := _MLP.match(key)) and not SAM_MLP.match(key):
            depth[m[1]] = max(depth.get(m[1], 0), int(m[2]) + 1)
    out: dict[str, torch.Tensor] = {}
    for key, value in renamed.items():
        new = key
        if (m := _MLP.match(key)) and m[1] in depth:
            i, d = int(m[2]), depth[m[1]]
            layer = "proj_in" if i == 0 else "proj_out" if i == d - 1 else f"layers.{i - 1}"
            new = f"{m[1]}.{layer}.{m[3]}"
        out[IMAGE_KEYS.to_hf(new)] = value
    # SAM's prompt-encoder / decoder names (mask_embed, upscale_*, layer_norm*, its MLPs); attention out_proj -> o_proj
    sam_part = meta_to_hf({k: v for k, v in out.items() if k.startswith(("prompt_encoder.", "mask_decoder."))})
    out = {k: v for k, v in out.items() if not k.startswith(("prompt_encoder.", "mask_decoder."))}
    out.update({k.replace(".out_proj.", ".o_proj."): v for k, v in sam_part.items()})
    if points:
        out["prompt_encoder.point_embed.weight"] = torch.cat([points[i] for i in sorted(points)], dim=0)
    return out


def hiera_config_from_meta(state: dict) -> dict:
    """Sam2HieraDetConfig arguments for Meta's Hiera trunk weights."""
    p = "image_encoder.trunk."
    width = int(state[p + "patch_embed.proj.weight"].shape[0])
    n_blocks = _count(state, r"^image_encoder\.trunk\.blocks\.(\d+)\.")
    dims = [int(state[f"{p}blocks.{i}.norm2.weight"].shape[0]) for i in range(n_blocks)]
    per_stage, stage_dims = [], []
    for d in dims:
        if stage_dims and stage_dims[-1] == d:
            per_stage[-1] += 1
        else:
            stage_dims.append(d)
            per_stage.append(1)
    key = (width, tuple(per_stage))
    if key not in RELEASED_HIERA:
        known = "; ".join(f"width {w}, blocks {list(b)}" for w, b in RELEASED_HIERA)
        raise ValueError(f"its Hiera trunk (width {width}, blocks per stage {per_stage}) is not a released SAM 2 size "
                         f"({known}); convert it to a transformers checkpoint instead")
    heads, global_blocks, windows = RELEASED_HIERA[key]
    return dict(
        hidden_size=width, num_attention_heads=heads, blocks_per_stage=per_stage, embed_dim_per_stage=stage_dims,
        num_attention_heads_per_stage=[heads * 2 ** i for i in range(len(per_stage))],
        window_size_per_stage=list(windows), global_attention_blocks=list(global_blocks),
        window_positional_embedding_background_size=list(state[p + "pos_embed"].shape[2:]),
        image_size=[IMAGE_SIZE, IMAGE_SIZE],
    )


def sam2_from_meta(state: dict):
    """A Sam2Model holding the image-model weights of a Meta SAM 2 / 2.1 file."""
    from transformers import Sam2Config, Sam2HieraDetConfig, Sam2Model

    backbone = Sam2HieraDetConfig(**hiera_config_from_meta(state)).to_dict()
    n_convs = _count(state, r"^image_encoder\.neck\.convs\.(\d+)\.")
    channels = [int(state[f"image_encoder.neck.convs.{i}.conv.weight"].shape[1]) for i in range(n_convs)]
    fpn = int(state["image_encoder.neck.convs.0.conv.weight"].shape[0])
    vision = dict(backbone_config=backbone, backbone_channel_list=channels, fpn_hidden_size=fpn,
                  backbone_feature_sizes=[[IMAGE_SIZE // s] * 2 for s in (4, 8, 16)])
    tokens = state["sam_mask_decoder.mask_tokens.weight"]
    dim = int(tokens.shape[1])
    q = state["sam_mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"]
    prompt = dict(hidden_size=dim, image_size=IMAGE_SIZE, patch_size=16,
                  mask_input_channels=int(state["sam_prompt_encoder.mask_downscaling.3.weight"].shape[0]),
                  num_point_embeddings=_count(state, r"^sam_prompt_encoder\.point_embeddings\.(\d+)\."))
    decoder = dict(hidden_size=dim, num_hidden_layers=_count(state, r"^sam_mask_decoder\.transformer\.layers\.(\d+)\."),
                   mlp_dim=int(state["sam_mask_decoder.transformer.layers.0.mlp.layers.0.weight"].shape[0]),
                   attention_downsample_rate=dim // int(q.shape[0]), num_multimask_outputs=int(tokens.shape[0]) - 1,
                   iou_head_depth=_count(state, r"^sam_mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
                   iou_head_hidden_dim=int(state["sam_mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]))
    config = Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    return build_model(Sam2Model, config, meta_to_hf_sam2(state))


# ---------------------------------------------------------------------------------- video (SAM 2.1)
#: Meta SAM 2.1 memory modules <-> transformers Sam2VideoModel names (the mask downsampler's Sequential
#: indices and the object-pointer MLP are renamed by position in the functions below)
VIDEO_KEYS = KeyMap([
    ("maskmem_tpos_enc", "memory_temporal_positional_encoding"),
    ("no_mem_pos_enc", "no_memory_positional_encoding"),
    ("no_obj_ptr", "no_object_pointer"),
    ("no_obj_embed_spatial", "occlusion_spatial_embedding_parameter"),
    ("memory_attention.layers.{}.self_attn.out_proj.", "memory_attention.layers.{}.self_attn.o_proj."),
    ("memory_attention.layers.{}.cross_attn_image.out_proj.", "memory_attention.layers.{}.cross_attn_image.o_proj."),
    ("memory_attention.layers.{}.norm{}.", "memory_attention.layers.{}.layer_norm{}."),
    ("memory_attention.norm.", "memory_attention.layer_norm."),
    ("memory_encoder.pix_feat_proj.", "memory_encoder.feature_projection."),
    ("memory_encoder.out_proj.", "memory_encoder.projection."),
    ("memory_encoder.fuser.layers.{}.gamma", "memory_encoder.memory_fuser.layers.{}.scale"),
    ("memory_encoder.fuser.layers.{}.dwconv.", "memory_encoder.memory_fuser.layers.{}.depthwise_conv."),
    ("memory_encoder.fuser.layers.{}.norm.", "memory_encoder.memory_fuser.layers.{}.layer_norm."),
    ("memory_encoder.fuser.layers.{}.pwconv{}.", "memory_encoder.memory_fuser.layers.{}.pointwise_conv{}."),
    ("obj_ptr_tpos_proj.", "temporal_positional_encoding_projection_layer."),
])


def meta_to_hf_sam2_video(state: dict) -> dict:
    """Rename a Meta SAM 2.1 state dict (image model and memory) to transformers' Sam2VideoModel names."""
    out = meta_to_hf_sam2(state)
    # the mask downsampler: Sequential [conv, LayerNorm2d, GELU] x n, then a 1x1 conv
    down = sorted({int(m[1]) for k in state if (m := re.match(r"^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.", k))})
    final = down[-1] if down else None
    depth = _count(state, r"^obj_ptr_proj\.layers\.(\d+)\.")
    for key, value in state.items():
        if not key.startswith(_VIDEO_ONLY):
            continue
        new = key
        if m := re.match(r"^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.(.+)$", key):
            i = int(m[1])
            if i == final:
                new = f"memory_encoder.mask_downsampler.final_conv.{m[2]}"
            else:
                part = "conv" if i % 3 == 0 else "layer_norm"
                new = f"memory_encoder.mask_downsampler.layers.{i // 3}.{part}.{m[2]}"
        elif m := re.match(r"^obj_ptr_proj\.layers\.(\d+)\.(.+)$", key):
            i = int(m[1])
            layer = "proj_in" if i == 0 else "proj_out" if i == depth - 1 else f"layers.{i - 1}"
            new = f"object_pointer_proj.{layer}.{m[2]}"
        else:
            new = VIDEO_KEYS.to_hf(key)
        out[new] = value
    return out


def sam2_video_from_meta(state: dict):
    """A Sam2VideoModel holding a Meta SAM 2.1 file (image model + memory), for `vfm track`."""
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VideoModel

    if "obj_ptr_tpos_proj.weight" not in state or "no_obj_embed_spatial" not in state:
        raise ValueError("it is a SAM 2.0 file; vfm tracks with SAM 2.1 files (sam2.1_hiera_*.pt), whose memory "
                         "settings transformers' Sam2VideoModel defaults to")
    image = sam2_from_meta(state).config  # the image model's architecture, read as for segmenting
    mem_layers = _count(state, r"^memory_attention\.layers\.(\d+)\.")
    fuser_layers = _count(state, r"^memory_encoder\.fuser\.layers\.(\d+)\.")
    tpos = state["maskmem_tpos_enc"]
    config = Sam2VideoConfig(
        vision_config=image.vision_config.to_dict(), prompt_encoder_config=image.prompt_encoder_config.to_dict(),
        mask_decoder_config=image.mask_decoder_config.to_dict(), image_size=IMAGE_SIZE,
        num_maskmem=int(tpos.shape[0]), memory_attention_num_layers=mem_layers,
        memory_attention_hidden_size=int(state["memory_attention.layers.0.self_attn.q_proj.weight"].shape[0]),
        memory_attention_feed_forward_hidden_size=int(state["memory_attention.layers.0.linear1.weight"].shape[0]),
        memory_encoder_output_channels=int(state["memory_encoder.out_proj.weight"].shape[0]),
        memory_fuser_num_layers=fuser_layers,
        memory_fuser_intermediate_dim=int(state["memory_encoder.fuser.layers.0.pwconv1.weight"].shape[0]),
    )
    config.vision_config.backbone_config = Sam2HieraDetConfig(**hiera_config_from_meta(state))
    return build_model(Sam2VideoModel, config, meta_to_hf_sam2_video(state))


# ---------------------------------------------------------------------------------- the inverse
_HF_MLP = re.compile(r"^(.*(?:\.mlp|mlps\.\d+|_head)|object_pointer_proj)\.(proj_in|proj_out|layers\.(\d+))\.(weight|bias)$")


def hf_to_meta_sam2(hf: dict) -> dict:
    """The inverse of :func:`meta_to_hf_sam2` / :func:`meta_to_hf_sam2_video`: transformers' Sam2Model or
    Sam2VideoModel names back to Meta's (the duplicate image positional embedding is dropped)."""
    from vfm.models.meta.sam_keys import _MLP as SAM_MLP, hf_to_meta

    hidden: dict[str, int] = {}
    for key in hf:
        if (m := _HF_MLP.match(key)) and m[3] is not None:
            hidden[m[1]] = max(hidden.get(m[1], 0), int(m[3]) + 1)
    out: dict[str, torch.Tensor] = {}
    sam_part: dict[str, torch.Tensor] = {}
    n_down = _count(hf, r"^memory_encoder\.mask_downsampler\.layers\.(\d+)\.")
    for key, value in hf.items():
        if key == "shared_image_embedding.positional_embedding":
            continue
        if key == "prompt_encoder.point_embed.weight":
            for i in range(value.shape[0]):
                out[f"sam_prompt_encoder.point_embeddings.{i}.weight"] = value[i:i + 1]
            continue
        new = key
        m = _HF_MLP.match(key)
        if m and not SAM_MLP.match(key):  # Hiera's, the two-way transformer's, the object-score and pointer MLPs
            part = m[2]
            i = 0 if part == "proj_in" else hidden.get(m[1], 0) + 1 if part == "proj_out" else int(m[3]) + 1
            new = f"{m[1]}.layers.{i}.{m[4]}"
            if new.startswith("object_pointer_proj."):
                new = "obj_ptr_proj." + new[len("object_pointer_proj."):]
        if new.startswith(("prompt_encoder.", "mask_decoder.")):
            sam_part[new.replace(".o_proj.", ".out_proj.") if new.startswith("mask_decoder.transformer.") else new] = value
            continue
        if mm := re.match(r"^memory_encoder\.mask_downsampler\.layers\.(\d+)\.(conv|layer_norm)\.(.+)$", new):
            new = f"memory_encoder.mask_downsampler.encoder.{3 * int(mm[1]) + (mm[2] == 'layer_norm')}.{mm[3]}"
        elif mm := re.match(r"^memory_encoder\.mask_downsampler\.final_conv\.(.+)$", new):
            new = f"memory_encoder.mask_downsampler.encoder.{3 * n_down}.{mm[1]}"
        out[VIDEO_KEYS.to_meta(IMAGE_KEYS.to_meta(new))] = value
    for key, value in hf_to_meta(sam_part).items():
        key = re.sub(r"^prompt_encoder\.", "sam_prompt_encoder.", key)
        out[re.sub(r"^mask_decoder\.", "sam_mask_decoder.", key)] = value
    return out
