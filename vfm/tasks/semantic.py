"""Closed-set dense segmentation: semantic maps and panoptic segments, with transformers' post-processing.

    model = SemanticModel.load("segformer-b0-ade")      # Mask2Former, OneFormer, EoMT, SegFormer, UperNet
    sem = model.semantic("street.jpg")                   # SemanticMap: a class index per pixel
    pan = model.panoptic("street.jpg")                   # Instances: one mask per segment (Mask2Former/OneFormer/EoMT)
    ins = model.instances("street.jpg")                  # Instances: one mask per object (instance checkpoints)

The numbers are those of transformers: the checkpoint's image processor, the model, and the
processor's ``post_process_semantic_segmentation`` / ``post_process_panoptic_segmentation`` with the
original image size (the ``image-segmentation`` pipeline's calls). OneFormer is told its task
("semantic" or "panoptic"). Mask labeling (``vfm everything --semantic-model``) uses its own
full-resolution variant of the semantic rule, in vfm/models/semantic.py.
"""

from __future__ import annotations

import numpy as np
import torch

from vfm.errors import ModelError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.results.instances import Instances
from vfm.results.semantic import SemanticMap
from vfm.runtime import autocast

UNIVERSAL = ("mask2former", "oneformer", "eomt")  # query-based: semantic, panoptic and instance from one head
DENSE = ("segformer", "upernet")  # per-pixel logits: semantic only
PANOPTIC_ALIASES = "mask2former-coco-panoptic, oneformer-coco, eomt-coco-panoptic"
INSTANCE_ALIASES = "mask2former-coco-instance, oneformer-coco, eomt-coco-instance"


class SemanticModel:
    def __init__(self, model, processor, family: str, device: torch.device, dtype: torch.dtype = torch.float32,
                 name: str = ""):
        self.model = model.to(device).eval()
        self.processor = processor
        self.family = family
        self.device = device
        self.dtype = dtype
        self.name = name
        id2label = model.config.id2label
        self.class_names = [str(id2label[i]) for i in range(len(id2label))]

    @classmethod
    def load(cls, name: str, device: str | None = None, precision: str = "fp32") -> "SemanticModel":
        from transformers import AutoImageProcessor, AutoProcessor

        from vfm.errors import require
        from vfm.models.processors import load_processor
        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device, resolve_precision

        resolved = resolve(name, task="semantic")
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        if resolved.family in UNIVERSAL:
            require("scipy", "semantic")  # transformers' Mask2Former/OneFormer modules import it
            from transformers import AutoModelForUniversalSegmentation as Model
        elif resolved.family in DENSE:
            from transformers import AutoModelForSemanticSegmentation as Model
        else:  # pragma: no cover - the registry lists only the families above for "semantic"
            raise ModelError(f"model '{name}' ({resolved.family}) is not a segmentation model vfm runs", model_name=name)
        model = load_pretrained(Model.from_pretrained, resolved)
        processor = load_processor(AutoProcessor if resolved.family == "oneformer" else AutoImageProcessor, resolved)
        return cls(model, processor, resolved.family, dev, dtype, name=name)

    def _forward(self, pixels: np.ndarray, task: str):
        from PIL import Image

        kwargs = {"task_inputs": [task]} if self.family == "oneformer" else {}
        enc = self.processor(images=[Image.fromarray(pixels)], return_tensors="pt", **kwargs)
        offsets = enc.get("patch_offsets")  # EoMT's sliding-window crops: a list of tensors, merged by the processor
        enc = {k: v.to(self.device) for k, v in enc.items() if isinstance(v, torch.Tensor)}
        if offsets:
            enc["patch_offsets"] = offsets
        with torch.inference_mode(), autocast(self.device, self.dtype):
            out = self.model(**enc)
        for key in ("logits", "class_queries_logits", "masks_queries_logits"):
            if getattr(out, key, None) is not None:
                setattr(out, key, getattr(out, key).float())
        return out

    def semantic(self, image: ImageSource | LoadedImage) -> SemanticMap:
        """A class index for every pixel of ``image`` (its original size)."""
        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        out = self._forward(loaded.pixels, "semantic")
        labels = self.processor.post_process_semantic_segmentation(out, target_sizes=[(loaded.height, loaded.width)])[0]
        return SemanticMap(labels.cpu().numpy(), self.class_names, model=self.name)

    def panoptic(self, image: ImageSource | LoadedImage, threshold: float = 0.8, mask_threshold: float = 0.5,
                 overlap_mask_area_threshold: float = 0.8) -> Instances:
        """Panoptic segments: one non-overlapping mask per segment (transformers' thresholds and rule).

        ``scores`` are the segments' class probabilities, ``class_ids`` index :attr:`class_names`,
        ``data["isthing"]`` says thing (countable) or stuff where the checkpoint's processor knows
        (OneFormer metadata ``thing_ids``), else True for every segment.
        """
        if self.family not in UNIVERSAL:
            raise ModelError(f"model '{self.name}' ({self.family}) makes semantic maps only; panoptic segments need a "
                             f"Mask2Former or OneFormer panoptic checkpoint ({PANOPTIC_ALIASES})", model_name=self.name)
        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        h, w = loaded.height, loaded.width
        out = self._forward(loaded.pixels, "panoptic")
        result = self.processor.post_process_panoptic_segmentation(
            out, threshold=threshold, mask_threshold=mask_threshold,
            overlap_mask_area_threshold=overlap_mask_area_threshold, target_sizes=[(h, w)])[0]
        seg_map = result["segmentation"].cpu().numpy()
        infos = result["segments_info"]
        if not infos:
            return Instances.empty((h, w), labeled=True,
                                   data={"segment_ids": np.zeros(0, np.int64), "isthing": np.zeros(0, bool)})
        things = self._thing_ids()
        ids = np.array([int(info["label_id"]) for info in infos], dtype=np.int64)
        return Instances.from_masks(
            np.stack([seg_map == info["id"] for info in infos]),
            np.array([float(info["score"]) for info in infos], dtype=np.float32),
            class_ids=ids, class_names=[self.class_names[i] for i in ids],
            data={"segment_ids": np.array([int(info["id"]) for info in infos], dtype=np.int64),
                  "isthing": np.array([things is None or int(i) in things for i in ids], dtype=bool)},
        )

    def instances(self, image: ImageSource | LoadedImage, threshold: float | None = None,
                  mask_threshold: float | None = None, overlap_mask_area_threshold: float | None = None) -> Instances:
        """Instance segmentation: one mask per object, with transformers' ``post_process_instance_segmentation``.

        Thresholds left at None are the processor's defaults (Mask2Former/OneFormer 0.5, EoMT 0.8 for
        the score; EoMT and Mask2Former binarise mask logits at 0 and take no mask threshold).
        Mask2Former returns one binary map per instance (masks may overlap); OneFormer and EoMT return
        a segment map, so their masks do not overlap. ``scores`` are transformers' (class probability
        times mean mask probability), ``class_ids`` index :attr:`class_names`.
        """
        if self.family not in UNIVERSAL:
            raise ModelError(f"model '{self.name}' ({self.family}) makes semantic maps only; instance masks need a "
                             f"Mask2Former, OneFormer or EoMT instance checkpoint ({INSTANCE_ALIASES})", model_name=self.name)
        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        h, w = loaded.height, loaded.width
        out = self._forward(loaded.pixels, "instance")
        kw = {"threshold": threshold}
        if self.family == "oneformer":
            kw.update(task_type="instance", mask_threshold=mask_threshold, overlap_mask_area_threshold=overlap_mask_area_threshold)
        elif self.family == "mask2former":
            kw.update(return_binary_maps=True, overlap_mask_area_threshold=overlap_mask_area_threshold)
        kw = {k: v for k, v in kw.items() if v is not None}
        result = self.processor.post_process_instance_segmentation(out, target_sizes=[(h, w)], **kw)[0]
        infos = result["segments_info"]
        if not infos:
            return Instances.empty((h, w), labeled=True)
        seg = result["segmentation"].cpu().numpy()
        masks = seg > 0.5 if seg.ndim == 3 else np.stack([seg == info["id"] for info in infos])
        ids = np.array([int(info["label_id"]) for info in infos], dtype=np.int64)
        keep = masks.reshape(len(masks), -1).any(1)  # a segment-map instance wholly covered by later ones has no pixels
        return Instances.from_masks(
            masks[keep], np.array([float(info["score"]) for info in infos], dtype=np.float32)[keep],
            class_ids=ids[keep], class_names=[self.class_names[i] for i in ids[keep]],
        )

    def _thing_ids(self) -> set[int] | None:
        meta = getattr(getattr(self.processor, "image_processor", self.processor), "metadata", None)
        if isinstance(meta, dict) and meta.get("thing_ids") is not None:
            return {int(i) for i in meta["thing_ids"]}
        return None
