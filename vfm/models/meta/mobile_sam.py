"""MobileSAM (``mobile_sam.pt``): vfm's TinyViT encoder in front of transformers' SAM prompt encoder + mask decoder."""

from __future__ import annotations

from vfm.models.meta.sam import build_model, decoder_configs_from_meta
from vfm.models.meta.sam_keys import meta_to_hf
from vfm.models.meta.tiny_vit import IMAGE_SIZE, tiny_vit_from_state

PATCH = 16  # the embedding grid is 1/16 of the input, as SAM's


def mobile_sam_from_meta(state: dict):
    """A SamModel whose vision encoder is MobileSAM's TinyViT; the decoder is SAM's, names mapped as for SAM."""
    from transformers import SamConfig, SamModel

    encoder = tiny_vit_from_state({k[len("image_encoder."):]: v for k, v in state.items() if k.startswith("image_encoder.")})
    prompt, decoder = decoder_configs_from_meta(state, IMAGE_SIZE, PATCH)
    pe = state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    # The vision config only sizes the input and the shared positional embedding; its ViT is replaced.
    vision = dict(image_size=IMAGE_SIZE, patch_size=PATCH, hidden_size=64, num_hidden_layers=1, num_attention_heads=1,
                  global_attn_indexes=[0], output_channels=prompt["hidden_size"], num_pos_feats=int(pe.shape[1]))
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    return build_model(SamModel, config, meta_to_hf(state, encoder=False), vision_encoder=encoder)
