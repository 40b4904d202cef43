"""SAM 2 / SAM 2.1 image models through transformers' Sam2Model.

SAM 2 resizes the image to a 1024x1024 square (no aspect-preserving pad) with torchvision's
antialiased bilinear resize of the float image, as Meta's SAM2Transforms do, so point and box
coordinates are scaled per axis, and low-res masks are resized straight to the original size.
"""

from __future__ import annotations

from typing import Any

import torch

from vfm.models.promptable import Embedding, Preprocessing, PromptableModel, _expand
from vfm.models.sam import IMAGENET_MEAN, IMAGENET_STD, _batch_size


def sam2_preprocessing(config: Any, processor_config: dict | None) -> Preprocessing:
    image_size = int(getattr(config.prompt_encoder_config, "image_size", 1024))
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if processor_config:
        mean = tuple(processor_config.get("image_mean", mean))
        std = tuple(processor_config.get("image_std", std))
        size = processor_config.get("size") or {}
        if isinstance(size, dict) and "height" in size:
            image_size = int(size["height"])
    return Preprocessing(image_size=image_size, mean=mean, std=std, keep_aspect=False, resize="torchvision")


class Sam2Adapter(PromptableModel):
    family = "sam2"

    def _encode(self, pixel_values: torch.Tensor) -> dict[str, Any]:
        return {"image_embeddings": list(self.model.get_image_embeddings(pixel_values))}

    def _decode(self, embedding: Embedding, points, labels, boxes, mask_inputs, multimask):
        p = _batch_size(points, boxes, mask_inputs)
        kw: dict[str, Any] = {}
        if points is not None:
            kw["input_points"] = points[:, None].to(self.device)
            kw["input_labels"] = labels[:, None].to(self.device)
        if boxes is not None:
            kw["input_boxes"] = boxes[:, None].to(self.device)
        if mask_inputs is not None:
            kw["input_masks"] = mask_inputs.to(self.device)
        out = self.model(
            image_embeddings=[_expand(t, p) for t in embedding.tensors["image_embeddings"]],
            multimask_output=multimask,
            **kw,
        )
        return out.pred_masks[:, 0].float(), out.iou_scores[:, 0].float()


class Sam3TrackerAdapter(Sam2Adapter):
    """SAM 3's tracker on images: Sam2Model's prompt API; its low-res masks are 4x the embedding grid
    (288 for the 1008 input with 14-pixel patches), not a quarter of the input."""

    family = "sam3"

    @property
    def low_res_size(self) -> int:
        return int(self.model.prompt_encoder.image_embedding_size[0]) * 4
