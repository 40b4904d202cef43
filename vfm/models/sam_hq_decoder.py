"""SAM-HQ's mask decoder as the authors wrote it, on transformers' ``SamHQModel`` modules.

transformers 5.x's ``SamHQMaskDecoder.forward`` upsamples the image embedding from *before* the
two-way transformer, with height and width swapped (it keeps the transformer's image output under
the name ``iou_token_out`` and overwrites it), so its masks differ from the official SAM-HQ
(``segment_anything_hq``) on the same weights. This forward follows the official one
(``MaskDecoderHQ.predict_masks``): the transformer's image tokens are upscaled, the HQ features
(early ViT features + the embedding) are added to the mask features, and the output is the SAM
mask(s) plus the HQ mask. ``tests/test_meta_checkpoints.py`` checks it against the reference.

Multimask output keeps vfm's contract (three candidates, best score first, each plus the HQ mask);
the first is the official predictor's ``multimask_output=True`` mask.
"""

from __future__ import annotations

import torch


def decode_hq(model, image_embeddings: torch.Tensor, intermediate: list[torch.Tensor], sparse: torch.Tensor | None,
              dense: torch.Tensor, multimask: bool, hq_token_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks (B x M x 4h x 4w logits) and scores (B x M) for B prompts, one image embedding row each.

    ``image_embeddings`` is B x C x h x w, ``intermediate[0]`` the first global ViT block's B x h x w x V
    output, ``sparse`` B x 1 x N x C prompt tokens (or None), ``dense`` B x C x h x w.
    """
    dec = model.mask_decoder
    act = dec.activation
    b, c, h, w = image_embeddings.shape
    vit = intermediate[0].permute(0, 3, 1, 2)
    hq_features = dec.encoder_conv2(act(dec.encoder_norm(dec.encoder_conv1(image_embeddings))))
    hq_features = hq_features + dec.compress_vit_conv2(act(dec.compress_vit_norm(dec.compress_vit_conv1(vit))))

    tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight, dec.hq_token.weight], dim=0)
    tokens = tokens[None, None].expand(b, 1, -1, -1)
    if sparse is not None:
        tokens = torch.cat([tokens, sparse.to(tokens.dtype)], dim=2)
    pe = model.get_image_wide_positional_embeddings().expand(b, -1, -1, -1)
    queries, keys = dec.transformer(point_embeddings=tokens, image_embeddings=image_embeddings + dense,
                                    image_positional_embeddings=pe, attention_similarity=None)[:2]
    n = dec.num_mask_tokens  # the SAM mask tokens and the HQ token
    iou_out, mask_out = queries[:, 0, 0], queries[:, 0, 1:1 + n]
    src = keys[:, 0].transpose(1, 2).reshape(b, c, h, w)

    up = act(dec.upscale_conv2(act(dec.upscale_layer_norm(dec.upscale_conv1(src)))))
    up_hq = dec.mask_conv2(act(dec.mask_norm(dec.mask_conv1(up)))) + hq_features
    mlps = list(dec.output_hypernetworks_mlps) + [dec.hq_mask_mlp]
    hyper = torch.stack([mlp(mask_out[:, i]) for i, mlp in enumerate(mlps)], dim=1)  # B x n x C/8
    masks_sam = (hyper[:, : n - 1] @ up.flatten(2)).reshape(b, n - 1, *up.shape[2:])
    masks_hq = (hyper[:, n - 1:] @ up_hq.flatten(2)).reshape(b, 1, *up.shape[2:])
    iou = dec.iou_prediction_head(iou_out)  # B x (n - 1)
    if multimask:
        iou, order = torch.sort(iou[:, 1:], dim=1, descending=True)
        masks_sam = torch.gather(masks_sam[:, 1:], 1, (order + 0)[..., None, None].expand(-1, -1, *masks_sam.shape[2:]))
    else:
        iou, masks_sam = iou[:, :1], masks_sam[:, :1]
    masks = masks_hq.expand_as(masks_sam) if hq_token_only else masks_sam + masks_hq
    return masks, iou
