"""Closed-set semantic segmentation (Mask2Former, OneFormer): an image -> a per-pixel class map.

Used to vote on the labels of masks (Semantic Segment Anything). The post-processing is done here
in torch (no torchvision): per query class probabilities (softmax, "no object" dropped) times
per query mask probabilities (sigmoid), summed over queries, give a score per class and pixel;
the mask logits are upsampled to the model's input frame, the padding is cut off, the scores are
resized to the original image and the per-pixel argmax is the class. This is transformers'
``post_process_semantic_segmentation`` without its fixed 384x384 intermediate size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vfm.errors import DependencyError, ModelError
from vfm.runtime import autocast


class SemanticSegmenter:
    """A Mask2Former / OneFormer checkpoint with its image processor."""

    def __init__(self, model, processor, family: str, device: torch.device, dtype: torch.dtype = torch.float32):
        self.model = model.to(device).eval()
        self.processor = processor
        self.family = family  # "mask2former" or "oneformer"
        self.device = device
        self.dtype = dtype
        id2label = model.config.id2label
        self.class_names = [str(id2label[i]) for i in range(len(id2label))]
        self.name = ""

    @classmethod
    def load(cls, name: str, device: str | None = None, precision: str = "fp32") -> "SemanticSegmenter":
        """Load by alias (``mask2former-ade``, ``oneformer-ade`` ...), hub id or local directory."""
        from vfm.errors import require
        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device, resolve_precision

        require("scipy", "semantic")  # transformers' Mask2Former/OneFormer modules import it
        resolved = resolve(name, task="semantic")
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        if resolved.family == "mask2former":
            from transformers import Mask2FormerForUniversalSegmentation as Model
        else:
            from transformers import OneFormerForUniversalSegmentation as Model
        model = load_pretrained(Model.from_pretrained, resolved)
        processor = _load_processor(resolved)
        seg = cls(model, processor, resolved.family, dev, dtype)
        seg.name = name
        return seg

    # ------------------------------------------------------------------ inference
    def preprocess(self, pixels: np.ndarray) -> dict[str, torch.Tensor]:
        if self.family == "oneformer":
            enc = self.processor(images=[pixels], task_inputs=["semantic"], return_tensors="pt")
        else:
            enc = self.processor(images=[pixels], return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items() if isinstance(v, torch.Tensor)}

    @torch.no_grad()
    def class_scores(self, pixels: np.ndarray) -> torch.Tensor:
        """C x H x W per-class scores in the original image frame (float32, CPU)."""
        enc = self.preprocess(pixels)
        with autocast(self.device, self.dtype):
            out = self.model(**enc)
        cls_prob = out.class_queries_logits[0].float().softmax(-1)[:, :-1]  # Q x C
        masks = out.masks_queries_logits[0].float()  # Q x h x w
        in_h, in_w = enc["pixel_values"].shape[-2:]
        masks = F.interpolate(masks[None], size=(in_h, in_w), mode="bilinear", align_corners=False)[0]
        valid_h, valid_w = in_h, in_w
        if "pixel_mask" in enc:
            pm = enc["pixel_mask"][0].bool()
            valid_h = int(pm.any(dim=1).sum().item()) or in_h
            valid_w = int(pm.any(dim=0).sum().item()) or in_w
        masks = masks[:, :valid_h, :valid_w].sigmoid()
        scores = torch.einsum("qc,qhw->chw", cls_prob, masks)
        h, w = pixels.shape[:2]
        return F.interpolate(scores[None], size=(h, w), mode="bilinear", align_corners=False)[0].cpu()

    def segment(self, pixels: np.ndarray) -> np.ndarray:
        """H x W int32 map of class ids (indices into :attr:`class_names`)."""
        return self.class_scores(pixels).argmax(0).numpy().astype(np.int32)


def _load_processor(resolved):
    from transformers import AutoImageProcessor, AutoProcessor

    from vfm.models.registry import hub_online

    loader = AutoProcessor if resolved.family == "oneformer" else AutoImageProcessor
    last: BaseException | None = None
    for local_only in (True,) if resolved.is_local else (True, False):
        if not local_only and not hub_online():
            break
        try:
            return loader.from_pretrained(resolved.source, local_files_only=local_only)
        except ImportError as exc:
            raise DependencyError(f"the processor of {resolved.describe()} needs a missing package: {exc}") from exc
        except (OSError, ValueError) as exc:
            last = exc
    text = str(last).strip().splitlines()[0][:200] if last else "unknown"
    raise ModelError(f"the image processor of model {resolved.describe()} could not be loaded: {text}")
