"""Meta's SAM / SAM-HQ / MobileSAM checkpoint names <-> transformers' ``SamModel`` / ``SamHQModel`` names.

The mapping, Meta (``segment_anything`` / ``segment_anything_hq``) on the left:

=================================================  ==================================================
``image_encoder.``                                 ``vision_encoder.``
``image_encoder.blocks.N.norm1|norm2``             ``vision_encoder.layers.N.layer_norm1|layer_norm2``
``image_encoder.patch_embed.proj``                 ``vision_encoder.patch_embed.projection``
``image_encoder.neck.0|1|2|3``                     ``vision_encoder.neck.conv1|layer_norm1|conv2|layer_norm2``
``prompt_encoder.pe_layer.positional_encoding_``   ``prompt_encoder.shared_embedding.positional_embedding``
``gaussian_matrix``                                and ``shared_image_embedding.positional_embedding``
``prompt_encoder.point_embeddings.N``              ``prompt_encoder.point_embed.N``
``prompt_encoder.mask_downscaling.0|1|3|4|6``      ``prompt_encoder.mask_embed.conv1|layer_norm1|conv2|layer_norm2|conv3``
``mask_decoder.transformer.layers.N.normK``        ``mask_decoder.transformer.layers.N.layer_normK``
``mask_decoder.transformer.norm_final_attn``       ``mask_decoder.transformer.layer_norm_final_attn``
``mask_decoder.output_upscaling.0|1|3``            ``mask_decoder.upscale_conv1|upscale_layer_norm|upscale_conv2``
MLP ``layers.0 | layers.1..D-2 | layers.D-1``      ``proj_in | layers.0..D-3 | proj_out`` (iou head, hypernetworks, HQ)
``mask_decoder.hf_token`` / ``hf_mlp``             ``mask_decoder.hq_token`` / ``hq_mask_mlp`` (SAM-HQ)
``mask_decoder.compress_vit_feat.0|1|3``           ``mask_decoder.compress_vit_conv1|compress_vit_norm|compress_vit_conv2``
``mask_decoder.embedding_encoder.0|1|3``           ``mask_decoder.encoder_conv1|encoder_norm|encoder_conv2``
``mask_decoder.embedding_maskfeature.0|1|3``       ``mask_decoder.mask_conv1|mask_norm|mask_conv2``
=================================================  ==================================================

Everything else keeps its name. MobileSAM's TinyViT encoder (``image_encoder.*``) is not renamed
here; :mod:`vfm.models.meta.tiny_vit` holds it under Meta's names.
"""

from __future__ import annotations

import re

import torch

# (Meta pattern, transformers replacement), applied in order to each key. Inverse rules below.
_TO_HF = [
    (r"^image_encoder\.blocks\.(\d+)\.norm(\d)\.", r"vision_encoder.layers.\1.layer_norm\2."),
    (r"^image_encoder\.blocks\.", "vision_encoder.layers."),
    (r"^image_encoder\.patch_embed\.proj\.", "vision_encoder.patch_embed.projection."),
    (r"^image_encoder\.neck\.0\.", "vision_encoder.neck.conv1."),
    (r"^image_encoder\.neck\.1\.", "vision_encoder.neck.layer_norm1."),
    (r"^image_encoder\.neck\.2\.", "vision_encoder.neck.conv2."),
    (r"^image_encoder\.neck\.3\.", "vision_encoder.neck.layer_norm2."),
    (r"^image_encoder\.", "vision_encoder."),
    (r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$", "prompt_encoder.shared_embedding.positional_embedding"),
    (r"^prompt_encoder\.point_embeddings\.", "prompt_encoder.point_embed."),
    (r"^prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    (r"^mask_decoder\.hf_token\.", "mask_decoder.hq_token."),
    (r"^mask_decoder\.hf_mlp\.", "mask_decoder.hq_mask_mlp."),
    (r"^mask_decoder\.compress_vit_feat\.0\.", "mask_decoder.compress_vit_conv1."),
    (r"^mask_decoder\.compress_vit_feat\.1\.", "mask_decoder.compress_vit_norm."),
    (r"^mask_decoder\.compress_vit_feat\.3\.", "mask_decoder.compress_vit_conv2."),
    (r"^mask_decoder\.embedding_encoder\.0\.", "mask_decoder.encoder_conv1."),
    (r"^mask_decoder\.embedding_encoder\.1\.", "mask_decoder.encoder_norm."),
    (r"^mask_decoder\.embedding_encoder\.3\.", "mask_decoder.encoder_conv2."),
    (r"^mask_decoder\.embedding_maskfeature\.0\.", "mask_decoder.mask_conv1."),
    (r"^mask_decoder\.embedding_maskfeature\.1\.", "mask_decoder.mask_norm."),
    (r"^mask_decoder\.embedding_maskfeature\.3\.", "mask_decoder.mask_conv2."),
]
_TO_META = [
    (r"^vision_encoder\.layers\.(\d+)\.layer_norm(\d)\.", r"image_encoder.blocks.\1.norm\2."),
    (r"^vision_encoder\.layers\.", "image_encoder.blocks."),
    (r"^vision_encoder\.patch_embed\.projection\.", "image_encoder.patch_embed.proj."),
    (r"^vision_encoder\.neck\.conv1\.", "image_encoder.neck.0."),
    (r"^vision_encoder\.neck\.layer_norm1\.", "image_encoder.neck.1."),
    (r"^vision_encoder\.neck\.conv2\.", "image_encoder.neck.2."),
    (r"^vision_encoder\.neck\.layer_norm2\.", "image_encoder.neck.3."),
    (r"^vision_encoder\.", "image_encoder."),
    (r"^prompt_encoder\.shared_embedding\.positional_embedding$", "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"),
    (r"^prompt_encoder\.point_embed\.", "prompt_encoder.point_embeddings."),
    (r"^prompt_encoder\.mask_embed\.conv1\.", "prompt_encoder.mask_downscaling.0."),
    (r"^prompt_encoder\.mask_embed\.layer_norm1\.", "prompt_encoder.mask_downscaling.1."),
    (r"^prompt_encoder\.mask_embed\.conv2\.", "prompt_encoder.mask_downscaling.3."),
    (r"^prompt_encoder\.mask_embed\.layer_norm2\.", "prompt_encoder.mask_downscaling.4."),
    (r"^prompt_encoder\.mask_embed\.conv3\.", "prompt_encoder.mask_downscaling.6."),
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.layer_norm(\d)\.", r"\1.norm\2."),
    (r"^mask_decoder\.transformer\.layer_norm_final_attn\.", "mask_decoder.transformer.norm_final_attn."),
    (r"^mask_decoder\.upscale_conv1\.", "mask_decoder.output_upscaling.0."),
    (r"^mask_decoder\.upscale_layer_norm\.", "mask_decoder.output_upscaling.1."),
    (r"^mask_decoder\.upscale_conv2\.", "mask_decoder.output_upscaling.3."),
    (r"^mask_decoder\.hq_token\.", "mask_decoder.hf_token."),
    (r"^mask_decoder\.hq_mask_mlp\.", "mask_decoder.hf_mlp."),
    (r"^mask_decoder\.compress_vit_conv1\.", "mask_decoder.compress_vit_feat.0."),
    (r"^mask_decoder\.compress_vit_norm\.", "mask_decoder.compress_vit_feat.1."),
    (r"^mask_decoder\.compress_vit_conv2\.", "mask_decoder.compress_vit_feat.3."),
    (r"^mask_decoder\.encoder_conv1\.", "mask_decoder.embedding_encoder.0."),
    (r"^mask_decoder\.encoder_norm\.", "mask_decoder.embedding_encoder.1."),
    (r"^mask_decoder\.encoder_conv2\.", "mask_decoder.embedding_encoder.3."),
    (r"^mask_decoder\.mask_conv1\.", "mask_decoder.embedding_maskfeature.0."),
    (r"^mask_decoder\.mask_norm\.", "mask_decoder.embedding_maskfeature.1."),
    (r"^mask_decoder\.mask_conv2\.", "mask_decoder.embedding_maskfeature.3."),
]
_MLP = re.compile(r"^(mask_decoder\.(?:iou_prediction_head|output_hypernetworks_mlps\.\d+|hf_mlp|hq_mask_mlp))\.(.+)$")
IMAGE_PE = "shared_image_embedding.positional_embedding"
PROMPT_PE = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def _mlp_depths(keys, meta: bool) -> dict[str, int]:
    """Number of linear layers of each decoder MLP, counted from the keys."""
    depth: dict[str, int] = {}
    for key in keys:
        m = _MLP.match(key)
        if m:
            part = m[2].split(".")
            n = int(part[1]) + 1 if part[0] == "layers" else 0  # Meta: layers.0..D-1; transformers: proj_in, layers.*, proj_out
            depth[m[1]] = max(depth.get(m[1], 0), n)
    return depth if meta else {k: v + 2 for k, v in depth.items()}


def _rename_mlp(key: str, depth: dict[str, int], to_hf: bool) -> str | None:
    m = _MLP.match(key)
    if not m:
        return None
    prefix, rest = m[1], m[2]
    d = depth[prefix]
    if to_hf:
        if not rest.startswith("layers."):  # already in transformers' names
            return None
        i, tail = rest.split(".", 2)[1:]
        i = int(i)
        layer = "proj_in" if i == 0 else "proj_out" if i == d - 1 else f"layers.{i - 1}"
        new_prefix = prefix.replace("hf_mlp", "hq_mask_mlp")
    else:
        parts = rest.split(".")
        if parts[0] == "layers":
            layer, tail = f"layers.{int(parts[1]) + 1}", ".".join(parts[2:])
        else:
            layer, tail = ("layers.0" if parts[0] == "proj_in" else f"layers.{d - 1}"), ".".join(parts[1:])
        new_prefix = prefix.replace("hq_mask_mlp", "hf_mlp")
    return f"{new_prefix}.{layer}.{tail}"


def meta_to_hf(state: dict[str, torch.Tensor], *, encoder: bool = True) -> dict[str, torch.Tensor]:
    """Rename a Meta SAM / SAM-HQ state dict to transformers' names (adds the shared image PE).

    ``encoder=False`` leaves ``image_encoder.*`` keys out (MobileSAM's TinyViT keeps Meta's names).
    """
    depth = _mlp_depths(state, meta=True)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("image_encoder.") and not encoder:
            continue
        new = _rename_mlp(key, depth, to_hf=True) or _rename(key, _TO_HF)
        out[new] = value
    if PROMPT_PE in state:
        out[IMAGE_PE] = state[PROMPT_PE]
    return out


def hf_to_meta(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`meta_to_hf` (drops the duplicate image PE, which must equal the prompt PE)."""
    hf_pe = "prompt_encoder.shared_embedding.positional_embedding"
    if IMAGE_PE in state and hf_pe in state and not torch.equal(state[IMAGE_PE], state[hf_pe]):
        raise ValueError("the image and prompt positional embeddings differ; Meta's SAM shares one")
    depth = _mlp_depths(state, meta=False)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == IMAGE_PE:
            continue
        out[_rename_mlp(key, depth, to_hf=False) or _rename(key, _TO_META)] = value
    return out
