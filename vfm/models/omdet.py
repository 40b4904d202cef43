"""OmDet-Turbo adapter (``OmDetTurboForObjectDetection``): class names -> boxes, scores, class ids.

OmDet-Turbo encodes each class name on its own (CLIP text tower) plus one task sentence ("Detect
cat, dog."), so a class list needs no token budget or chunking. Scores and boxes are transformers'
own: ``OmDetTurboProcessor.post_process_grounded_object_detection`` (top-k over query x class
pairs, the score threshold, per-class NMS), in original-image pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.runtime import autocast

THRESHOLD = 0.3  # transformers' default for OmDet-Turbo
NMS_IOU = 0.5


class OmDetAdapter:
    family = "omdet-turbo"

    def __init__(self, model, processor, device: torch.device, dtype: torch.dtype):
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        self.dtype = dtype
        text = model.config.text_config
        self.max_tokens = int(min(processor.tokenizer.model_max_length, text.max_position_embeddings))
        self.name = ""

    def _check_lengths(self, classes: list[str]) -> None:
        for name in classes:
            n = len(self.processor.tokenizer(name)["input_ids"])
            if n > self.max_tokens:
                raise PromptError(f"class '{name[:60]}' is {n} tokens; OmDet-Turbo reads at most {self.max_tokens}: "
                                  "shorten it")

    @torch.no_grad()
    def detect(self, pixels: np.ndarray, classes: list[str], threshold: float,
               nms_iou: float = NMS_IOU) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """XYXY pixel boxes, scores and class indices (into ``classes``) of one HxWx3 uint8 image."""
        self._check_lengths(classes)
        task = f"Detect {', '.join(classes)}."
        if len(self.processor.tokenizer(task)["input_ids"]) > self.max_tokens:
            task = "Detect objects."  # the task sentence only conditions the queries; every class is still scored
        inputs = self.processor(images=pixels, text=list(classes), task=task, return_tensors="pt",
                                input_data_format="channels_last")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with autocast(self.device, self.dtype):
            out = self.model(**inputs)
        for key in ("decoder_coord_logits", "decoder_class_logits"):
            setattr(out, key, getattr(out, key).float())
        h, w = pixels.shape[:2]
        res = self.processor.post_process_grounded_object_detection(
            out, threshold=threshold, nms_threshold=nms_iou, target_sizes=[(h, w)])[0]
        return res["boxes"].float().cpu(), res["scores"].float().cpu(), res["labels"].long().cpu()
