"""Closed-set semantic segmentation (Mask2Former, OneFormer): an image -> a per-pixel class map.

Used to vote on the labels of masks (Semantic Segment Anything). The semantic post-processing is
done here because transformers' ``post_process_semantic_segmentation`` first resizes every query
mask to a fixed 384x384, which loses detail on large images: per query class probabilities
(softmax, "no object" dropped) times per query mask probabilities (sigmoid), summed over queries,
give a score per class and pixel; the mask logits are upsampled to the model's input frame, the
padding is cut off, the scores are resized to the original image and the per-pixel argmax is the
class. Panoptic segments (:meth:`SemanticSegmenter.panoptic`) come from transformers' own
``post_process_panoptic_segmentation`` (it needs torchvision).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vfm.results.instances import Instances
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
        if resolved.family not in ("mask2former", "oneformer"):
            from vfm.errors import ModelError

            raise ModelError(f"model '{name}' is a {resolved.family} model; mask-label voting needs a Mask2Former or "
                             "OneFormer checkpoint (mask2former-ade, oneformer-ade, ...)", model_name=name)
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        if resolved.family == "mask2former":
            from transformers import Mask2FormerForUniversalSegmentation as Model
        else:
            from transformers import OneFormerForUniversalSegmentation as Model
        model = load_pretrained(Model.from_pretrained, resolved)
        from transformers import AutoImageProcessor, AutoProcessor

        from vfm.models.processors import load_processor

        processor = load_processor(AutoProcessor if resolved.family == "oneformer" else AutoImageProcessor, resolved)
        seg = cls(model, processor, resolved.family, dev, dtype)
        seg.name = name
        return seg

    # ------------------------------------------------------------------ inference
    def preprocess(self, pixels: np.ndarray, task: str = "semantic") -> dict[str, torch.Tensor]:
        if self.family == "oneformer":  # OneFormer conditions on the task; Mask2Former has one head for all
            enc = self.processor(images=[pixels], task_inputs=[task], return_tensors="pt")
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

    @torch.no_grad()
    def panoptic(self, pixels: np.ndarray, threshold: float = 0.8, mask_threshold: float = 0.5,
                 overlap_mask_area_threshold: float = 0.8) -> Instances:
        """Panoptic segments of an RGB uint8 HxWx3 image: one non-overlapping mask per segment.

        transformers' ``post_process_panoptic_segmentation`` with ``target_sizes`` = the image size:
        queries scoring <= ``threshold`` are dropped, a segment keeps the pixels where it is the most
        likely query and its mask probability > ``mask_threshold``, and segments that keep less than
        ``overlap_mask_area_threshold`` of their mask are dropped. ``class_ids`` index
        :attr:`class_names`, ``scores`` are the queries' class probabilities, ``data["segment_ids"]``
        the ids of the segment map transformers returns.
        """
        h, w = pixels.shape[:2]
        enc = self.preprocess(pixels, task="panoptic")
        with autocast(self.device, self.dtype):
            out = self.model(**enc)
        out.class_queries_logits = out.class_queries_logits.float()
        out.masks_queries_logits = out.masks_queries_logits.float()
        post = getattr(self.processor, "post_process_panoptic_segmentation")
        result = post(out, threshold=threshold, mask_threshold=mask_threshold,
                      overlap_mask_area_threshold=overlap_mask_area_threshold, target_sizes=[(h, w)])[0]
        seg_map = result["segmentation"].cpu().numpy()
        infos = result["segments_info"]
        if not infos:
            empty = Instances.empty((h, w))
            empty.class_ids, empty.class_names, empty.data = np.zeros(0, np.int64), [], {"segment_ids": np.zeros(0, np.int64)}
            return empty
        masks = np.stack([seg_map == info["id"] for info in infos])
        ids = np.array([int(info["label_id"]) for info in infos], dtype=np.int64)
        return Instances.from_masks(
            masks, np.array([float(info["score"]) for info in infos], dtype=np.float32),
            class_ids=ids, class_names=[self.class_names[i] for i in ids],
            data={"segment_ids": np.array([int(info["id"]) for info in infos], dtype=np.int64)},
        )
