"""SAM, SlimSAM and SAM-HQ through transformers' SamModel / SamHQModel.

Pre-processing matches Meta's SamPredictor: resize the longest side to 1024 (PIL bilinear,
``int(x * scale + 0.5)``), normalize, pad bottom-right to 1024x1024; masks come back through
bilinear upsampling to 1024, a crop of the unpadded area and bilinear resizing to the original size.
"""

from __future__ import annotations

from typing import Any

import torch

from vfm.models.promptable import Embedding, PromptableModel, Preprocessing, _expand
from vfm.models.sam_decoder import SamDecoder
from vfm.models.sam_hq_decoder import decode_hq
from vfm.models.sam_encoder import accelerate as accelerate_encoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sam_preprocessing(config: Any, processor_config: dict | None, keep_aspect: bool = True) -> Preprocessing:
    """Preprocessing from the processor config when there is one, else from the model config."""
    image_size = int(getattr(config.vision_config, "image_size", 1024))
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if processor_config:
        mean = tuple(processor_config.get("image_mean", mean))
        std = tuple(processor_config.get("image_std", std))
        size = processor_config.get("size") or {}
        if isinstance(size, dict):
            image_size = int(size.get("longest_edge", size.get("height", image_size)))
    return Preprocessing(image_size=image_size, mean=mean, std=std, keep_aspect=keep_aspect)


class SamAdapter(PromptableModel):
    family = "sam"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        accelerate_encoder(self.model)  # exact, less memory traffic in the ViT's attention layers
        # SAM / SlimSAM decode through the exact, rearranged decoder; SAM-HQ keeps its own forward
        self.fast_decoder = SamDecoder(self.model) if SamDecoder.supports(self.model) else None

    def _encode(self, pixel_values: torch.Tensor) -> dict[str, Any]:
        if self.external_encoder is not None:
            return {"image_embeddings": self.external_encoder(pixel_values)}
        return {"image_embeddings": self.model.get_image_embeddings(pixel_values)}

    def _prompt_kwargs(self, points, labels, boxes, mask_inputs) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if points is not None:
            kw["input_points"] = points[:, None].to(self.device)  # P x 1 x N x 2
            kw["input_labels"] = labels[:, None].to(self.device)
        if boxes is not None:
            kw["input_boxes"] = boxes[:, None].to(self.device)  # P x 1 x 4
        if mask_inputs is not None:
            kw["input_masks"] = mask_inputs.to(self.device)  # P x 1 x L x L
        return kw

    def _decode(self, embedding: Embedding, points, labels, boxes, mask_inputs, multimask):
        image_embeddings = embedding.tensors["image_embeddings"]
        if self.fast_decoder is not None:
            low, iou = self.fast_decoder(image_embeddings.to(self.device), points, labels, boxes, mask_inputs, multimask)
            return low.float(), iou.float()
        p = _batch_size(points, boxes, mask_inputs)
        out = self.model(
            image_embeddings=_expand(image_embeddings, p),
            multimask_output=multimask,
            **self._prompt_kwargs(points, labels, boxes, mask_inputs),
        )
        return out.pred_masks[:, 0].float(), out.iou_scores[:, 0].float()


class SamHQAdapter(SamAdapter):
    family = "sam-hq"

    def _encode(self, pixel_values: torch.Tensor) -> dict[str, Any]:
        embeddings, intermediate = self.model.get_image_embeddings(pixel_values)
        return {"image_embeddings": embeddings, "intermediate_embeddings": list(intermediate)}

    def _decode(self, embedding: Embedding, points, labels, boxes, mask_inputs, multimask):
        p = _batch_size(points, boxes, mask_inputs)
        kw = self._prompt_kwargs(points, labels, boxes, mask_inputs)
        if "input_points" in kw and "input_labels" not in kw:
            kw["input_labels"] = torch.ones_like(kw["input_points"][..., 0], dtype=torch.int)
        sparse, dense = self.model.prompt_encoder(input_points=kw.get("input_points"), input_labels=kw.get("input_labels"),
                                                  input_boxes=kw.get("input_boxes"), input_masks=kw.get("input_masks"))
        image = _expand(embedding.tensors["image_embeddings"], p).to(self.device)
        dense = dense.expand(p, -1, -1, -1) if dense.shape[0] != p else dense
        low, iou = decode_hq(self.model, image, [_expand(t, p).to(self.device) for t in embedding.tensors["intermediate_embeddings"]],
                             sparse, dense, multimask)
        return low.float(), iou.float()


def _batch_size(points, boxes, mask_inputs) -> int:
    for t in (points, boxes, mask_inputs):
        if t is not None:
            return int(t.shape[0])
    raise ValueError("a prompt needs points, a box or a mask")
