"""SAM 3's concept detector through transformers' ``Sam3Model``: every instance of a noun phrase and/or
example boxes in an image.

The checkpoint's own ``Sam3Processor`` prepares the image (1008x1008 for the real model), the text
(CLIP tokens, padded to 32) and the exemplar boxes (normalized cx, cy, w, h; label 1 positive, 0
negative); ``post_process_instance_segmentation`` turns queries into instances (score = query
probability x presence probability, masks resized to the image and thresholded). The image is
encoded once and its vision features reused for every prompt, as transformers' docs do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vfm.runtime import autocast

#: Meta's default confidence threshold for SAM 3 image predictions (sam3's Sam3Processor).
DEFAULT_THRESHOLD = 0.5
DEFAULT_MASK_THRESHOLD = 0.5


@dataclass
class ConceptOutput:
    """The instances of one concept: N masks (bool HxW), boxes (XYXY pixels), scores."""

    masks: np.ndarray
    xyxy: np.ndarray
    scores: np.ndarray


class Sam3Adapter:
    family = "sam3"

    def __init__(self, model, processor, device: torch.device, dtype: torch.dtype | None, name: str = "sam3"):
        self.model = model.eval().to(device)
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.name = name

    @torch.inference_mode()
    def encode(self, pixels: np.ndarray):
        """Vision features of an RGB uint8 image (reusable for any number of prompts)."""
        inputs = self.processor.image_processor(images=pixels, return_tensors="pt")
        with autocast(self.device, self.dtype):
            return self.model.get_vision_features(pixel_values=inputs["pixel_values"].to(self.device))

    @torch.inference_mode()
    def segment(self, vision, size: tuple[int, int], text: str | None, boxes: Sequence[Sequence[float]] = (),
                labels: Sequence[int] = (), threshold: float = DEFAULT_THRESHOLD,
                mask_threshold: float = DEFAULT_MASK_THRESHOLD) -> ConceptOutput:
        """Instances of one concept: ``text`` and/or exemplar ``boxes`` (XYXY pixels of an image of
        ``size`` (H, W), ``labels`` 1 positive / 0 negative)."""
        h, w = size
        kwargs = {}
        if boxes:
            kwargs = {"input_boxes": [[list(map(float, b)) for b in boxes]], "input_boxes_labels": [list(map(int, labels))]}
        inputs = self.processor(text=text, original_sizes=[[h, w]], return_tensors="pt", **kwargs)
        feed = {k: inputs[k].to(self.device) for k in ("input_ids", "attention_mask", "input_boxes", "input_boxes_labels")
                if k in inputs}
        with autocast(self.device, self.dtype):
            out = self.model(vision_embeds=vision, **feed)
        for key in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits"):
            value = getattr(out, key)
            if value is not None:
                setattr(out, key, value.float().cpu())
        res = self.processor.post_process_instance_segmentation(out, threshold=threshold, mask_threshold=mask_threshold,
                                                                target_sizes=[(h, w)])[0]
        return ConceptOutput(masks=res["masks"].numpy().astype(bool).reshape(-1, h, w),
                             xyxy=res["boxes"].numpy().astype(np.float32).reshape(-1, 4),
                             scores=res["scores"].numpy().astype(np.float32).reshape(-1))


def load_sam3(resolved, device: torch.device, dtype: torch.dtype | None) -> Sam3Adapter:
    """Sam3Model (a ``sam3`` checkpoint, or the detector of a ``sam3_video`` one such as facebook/sam3),
    or Sam3LiteTextModel (``sam3_lite_text``)."""
    from transformers import Sam3Processor

    from vfm.models.processors import load_processor
    from vfm.models.registry import load_pretrained, read_hub_json

    config = read_hub_json(resolved.source, "config.json", required=True, name=resolved.name)
    if config.get("model_type") == "sam3_lite_text":
        from transformers import Sam3LiteTextModel as Model
    else:
        from transformers import Sam3Model as Model
    model = load_pretrained(Model.from_pretrained, resolved)
    processor = load_processor(Sam3Processor, resolved)
    return Sam3Adapter(model, processor, device, dtype, resolved.name)


# ---------------------------------------------------------------------------------------- tracker
def load_sam3_tracker(resolved, config: dict):
    """Sam3TrackerModel for clicks and boxes on one object (the SAM 2 API on SAM 3's backbone).

    A ``sam3_tracker`` checkpoint loads directly. The ``sam3_video`` layout of facebook/sam3 holds the
    tracker's weights too, but transformers 5.25's ``Sam3TrackerModel.from_pretrained`` leaves them
    unloaded from it (only the shared backbone is renamed), so vfm loads ``Sam3TrackerVideoModel``,
    whose loading maps the whole checkpoint, strictly, and copies the image tracker's weights out of
    it, every one of them present (``load_state_dict(strict=True)``).
    """
    from transformers import Sam3TrackerConfig, Sam3TrackerModel, Sam3TrackerVideoModel

    from vfm.errors import ModelError
    from vfm.models.registry import load_pretrained

    model_type = config.get("model_type")
    if model_type == "sam3_tracker":
        return load_pretrained(Sam3TrackerModel.from_pretrained, resolved)
    if model_type not in ("sam3_video", "sam3_tracker_video"):
        raise ModelError(f"model {resolved.describe()} is SAM 3's concept detector alone (model_type {model_type}), "
                         "without the tracker that segments clicks and boxes; use facebook/sam3 (sam3) or give it "
                         "--text / --exemplar prompts", model_name=resolved.name)
    video = load_pretrained(Sam3TrackerVideoModel.from_pretrained, resolved)
    c = video.config
    tracker = Sam3TrackerModel(Sam3TrackerConfig(vision_config=c.vision_config.to_dict(),
                                                 prompt_encoder_config=c.prompt_encoder_config.to_dict(),
                                                 mask_decoder_config=c.mask_decoder_config.to_dict()))
    weights = video.state_dict()
    tracker.load_state_dict({k: weights[k] for k in tracker.state_dict()}, strict=True)
    return tracker.eval()
