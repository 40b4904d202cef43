"""Closed-set object detection: any transformers object-detection checkpoint with its own class names
(DETR, Conditional DETR, Deformable DETR, RT-DETR, RT-DETR v2, D-FINE).

    det = ClosedSetDetector.load("rtdetr-v2-r18")          # or Detector.load(...), which dispatches here
    res = det.detect("street.jpg")                          # every class the model knows, score > 0.5
    res = det.detect("street.jpg", "person, car")           # only those (the model's names)
    res = det.detect("street.jpg", "person: pedestrian")    # found as "person", written "pedestrian"

The numbers are those of transformers' ``object-detection`` pipeline: the checkpoint's image
processor, the model, and the processor's ``post_process_object_detection`` with the original
size and the score threshold (default 0.5, the pipeline's; ``box_threshold`` here). Boxes are XYXY
in original-image pixels, as floats (the pipeline rounds them to integers). Without ``classes``
``class_ids`` index :attr:`class_names`; with them they index the given classes (the class side
of ``prompt: class`` entries, :mod:`vfm.tasks.ontology`), whose prompts must be names the model
knows (case-insensitive).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.results.instances import Instances
from vfm.tasks.closed_classes import keep_classes, select_classes
from vfm.runtime import autocast

CLOSED_SET_FAMILIES = ("detr", "conditional-detr", "deformable-detr", "rt-detr", "rt-detr-v2", "d-fine")
DEFAULT_THRESHOLD = 0.5


class ClosedSetDetector:
    def __init__(self, model, processor, family: str, device: torch.device, dtype: torch.dtype = torch.float32,
                 name: str = ""):
        self.model = model.to(device).eval()
        self.processor = processor
        self.family = family
        self.device = device
        self.dtype = dtype
        self.name = name
        id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        self.class_names = [id2label.get(i, f"class_{i}") for i in range(max(id2label) + 1)]

    @classmethod
    def load(cls, name: str, device: str | None = None, precision: str = "fp32") -> "ClosedSetDetector":
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        from vfm.models.processors import load_processor
        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device, resolve_precision

        resolved = resolve(name, task="detect")
        if resolved.family in ("detr", "conditional-detr", "deformable-detr"):
            _need_timm_if_asked(resolved)
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        model = load_pretrained(AutoModelForObjectDetection.from_pretrained, resolved)
        processor = load_processor(AutoImageProcessor, resolved)
        return cls(model, processor, resolved.family, dev, dtype, name=name)

    @torch.inference_mode()
    def detect(self, image: ImageSource | LoadedImage | np.ndarray, classes: str | Iterable[str] | None = None,
               box_threshold: float | None = None, text_threshold: float | None = None,
               max_detections: int | None = None) -> Instances:
        """Boxes scoring above ``box_threshold`` (default 0.5), optionally only of ``classes``.

        ``text_threshold`` is accepted for the open-vocabulary signature and has no meaning here.
        """
        from PIL import Image

        from vfm.tasks.thresholds import check_threshold

        threshold = check_threshold(box_threshold, "box threshold")
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        if max_detections is not None and (not isinstance(max_detections, (int, np.integer)) or max_detections < 1):
            raise PromptError(f"max_detections {max_detections!r} must be a whole number >= 1")
        selected = select_classes(self.class_names, classes, self.name)
        if isinstance(image, np.ndarray):
            pixels = image
        else:
            pixels = (image if isinstance(image, LoadedImage) else load_image(image)).pixels
        h, w = pixels.shape[:2]
        enc = self.processor(images=Image.fromarray(pixels), return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if isinstance(v, torch.Tensor)}
        with autocast(self.device, self.dtype):
            out = self.model(**enc)
        for key in ("logits", "pred_boxes"):
            setattr(out, key, getattr(out, key).float())
        post = self.processor.post_process_object_detection(out, threshold=threshold, target_sizes=[(h, w)])[0]
        boxes = post["boxes"].cpu().numpy().astype(np.float32).reshape(-1, 4)
        scores = post["scores"].cpu().numpy().astype(np.float32)
        labels = post["labels"].cpu().numpy().astype(np.int64)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        res = keep_classes(Instances(image_size=(h, w), xyxy=boxes, scores=scores, class_ids=labels,
                                     class_names=[self.class_names[i] for i in labels]), selected)
        if max_detections is not None:
            res = res[np.argsort(-res.scores, kind="stable")[: int(max_detections)]]
        return res


def _need_timm_if_asked(resolved) -> None:
    """DETR-family hub checkpoints built on timm backbones need the timm package."""
    from vfm.models.registry import read_hub_json

    config = read_hub_json(resolved.source, "config.json", name=resolved.name) or {}
    if config.get("use_timm_backbone"):
        from vfm.errors import require

        require("timm", "detr")


def _no_exemplar(self, *_a, **_k):
    raise PromptError(f"model '{self.name}' ({self.family}) detects its own classes; exemplar detection "
                      "(find more like this box) needs an OWL model: --model owlv2-base or owlvit-base-32")


ClosedSetDetector.detect_exemplar = _no_exemplar
