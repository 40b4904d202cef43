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

class KeyMap:
    """Key renames both ways from one table of (Meta, transformers) templates, tried in order, first match wins.

    ``{}`` stands for a number (kept); a template ending in ``.`` renames a key's prefix, any other
    names a whole key. Keys no template matches keep their name.
    """

    def __init__(self, pairs: list[tuple[str, str]]):
        self.to_hf_rules = [self._compile(meta, hf) for meta, hf in pairs]
        self.to_meta_rules = [self._compile(hf, meta) for meta, hf in pairs]

    @staticmethod
    def _compile(src: str, dst: str) -> tuple[re.Pattern, str]:
        pattern = "^" + re.escape(src).replace(r"\{\}", r"(\d+)") + ("" if src.endswith(".") else "$")
        parts = dst.split("{}")  # key names hold no backslashes
        repl = "".join(part + (rf"\g<{i + 1}>" if i < len(parts) - 1 else "") for i, part in enumerate(parts))
        return re.compile(pattern), repl

    @staticmethod
    def _apply(key: str, rules) -> str:
        for pattern, repl in rules:
            new, n = pattern.subn(repl, key, count=1)
            if n:
                return new
        return key

    def to_hf(self, key: str) -> str:
        return self._apply(key, self.to_hf_rules)

    def to_meta(self, key: str) -> str:
        return self._apply(key, self.to_meta_rules)


SAM_KEYS = KeyMap([
    ("image_encoder.blocks.{}.norm{}.", "vision_encoder.layers.{}.layer_norm{}."),
    ("image_encoder.blocks.", "vision_encoder.layers."),
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."),
    ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."),
    ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    ("image_encoder.", "vision_encoder."),
    ("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", "prompt_encoder.shared_embedding.positional_embedding"),
    ("prompt_encoder.point_embeddings.", "prompt_encoder.point_embed."),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("mask_decoder.transformer.layers.{}.norm{}.", "mask_decoder.transformer.layers.{}.layer_norm{}."),
    ("mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
    ("mask_decoder.hf_token.", "mask_decoder.hq_token."),
    ("mask_decoder.hf_mlp.", "mask_decoder.hq_mask_mlp."),
    ("mask_decoder.compress_vit_feat.0.", "mask_decoder.compress_vit_conv1."),
    ("mask_decoder.compress_vit_feat.1.", "mask_decoder.compress_vit_norm."),
    ("mask_decoder.compress_vit_feat.3.", "mask_decoder.compress_vit_conv2."),
    ("mask_decoder.embedding_encoder.0.", "mask_decoder.encoder_conv1."),
    ("mask_decoder.embedding_encoder.1.", "mask_decoder.encoder_norm."),
    ("mask_decoder.embedding_encoder.3.", "mask_decoder.encoder_conv2."),
    ("mask_decoder.embedding_maskfeature.0.", "mask_decoder.mask_conv1."),
    ("mask_decoder.embedding_maskfeature.1.", "mask_decoder.mask_norm."),
    ("mask_decoder.embedding_maskfeature.3.", "mask_decoder.mask_conv2."),
])
_MLP = re.compile(r"^(mask_decoder\.(?:iou_prediction_head|output_hypernetworks_mlps\.\d+|hf_mlp|hq_mask_mlp))\.(.+)$")
IMAGE_PE = "shared_image_embedding.positional_embedding"
PROMPT_PE = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


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
        new = _rename_mlp(key, depth, to_hf=True) or SAM_KEYS.to_hf(key)
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
        out[_rename_mlp(key, depth, to_hf=False) or SAM_KEYS.to_meta(key)] = value
    return out
