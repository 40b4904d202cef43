"""Concept segmentation (SAM 3): a noun phrase and/or example boxes in, every matching instance out.

    seg = ConceptSegmenter.load("sam3")
    res = seg.segment("street.jpg", text="yellow school bus")                   # one concept
    res = seg.segment("shelf.jpg", exemplars=[((10, 20, 60, 90), True)])        # more like this box
    res = seg.ground("street.jpg", "person, car")                               # each class its own prompt

One model does what Grounded-SAM does with two, so ``ground`` has the Grounder's signature and result:
``Instances`` with masks, boxes (XYXY pixels), scores, ``class_ids`` (positions in the class list)
and ``class_names`` (``prompt: class`` entries are asked as ``prompt``, named ``class``). The image
is encoded once per image (the last few are cached by content) and every class is one prompt on
those features.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.models.sam3 import DEFAULT_MASK_THRESHOLD, DEFAULT_THRESHOLD
from vfm.results.instances import Instances
from vfm.tasks.thresholds import check_threshold

#: Images whose vision features are kept (by content), for repeated prompts on the same image.
FEATURE_CACHE = 4

Exemplar = tuple[Sequence[float], bool]  # XYXY pixels, positive?


class ConceptSegmenter:
    family = "sam3"

    def __init__(self, adapter):
        self.adapter = adapter
        self.name = adapter.name
        self._features: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.RLock()

    @classmethod
    def load(cls, model: str = "sam3", device: str | None = None, precision: str = "auto") -> "ConceptSegmenter":
        from vfm.models.registry import resolve
        from vfm.models.sam3 import load_sam3
        from vfm.runtime import resolve_device, resolve_precision, tune_allocator

        resolved = resolve(model)
        if resolved.family != "sam3":
            raise PromptError(f"model '{model}' has no text encoder for concepts; text and exemplar prompts need "
                              "SAM 3 (--model sam3), or use `vfm ground` with a detector")
        dev = resolve_device(device)
        if dev.type == "cpu":
            tune_allocator()
        return cls(load_sam3(resolved, dev, resolve_precision(precision, dev)))

    # ------------------------------------------------------------------ features
    def _vision(self, loaded: LoadedImage):
        from vfm.tasks.segment import image_key

        key = image_key(loaded.pixels)
        with self._lock:
            feats = self._features.get(key)
            if feats is None:
                feats = self.adapter.encode(loaded.pixels)
                self._features[key] = feats
                while len(self._features) > FEATURE_CACHE:
                    self._features.popitem(last=False)
            else:
                self._features.move_to_end(key)
            return feats

    # ------------------------------------------------------------------ one concept
    def segment(self, image: ImageSource | LoadedImage, text: str | None = None, exemplars: Sequence[Exemplar] = (),
                threshold: float | None = None, mask_threshold: float | None = None) -> Instances:
        """Every instance of one concept: ``text``, ``exemplars`` (boxes with a positive flag), or both.

        Instances are sorted by score (highest first); ``class_names`` is the text (or ``"visual"``
        for exemplars alone).
        """
        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        text = _check_text(text)
        boxes, labels = _check_exemplars(exemplars, loaded.height, loaded.width)
        if text is None and not boxes:
            raise PromptError("give a text prompt (--text \"yellow school bus\") and/or exemplar boxes (--exemplar X0,Y0,X1,Y1)")
        if boxes and not any(labels) and text is None:
            raise PromptError("negative exemplars alone say only what not to find; add a text prompt or a positive exemplar")
        th = DEFAULT_THRESHOLD if threshold is None else check_threshold(threshold, "--threshold")
        mth = DEFAULT_MASK_THRESHOLD if mask_threshold is None else check_threshold(mask_threshold, "--mask-threshold")
        with self._lock:
            out = self.adapter.segment(self._vision(loaded), (loaded.height, loaded.width), text, boxes, labels, th, mth)
        order = np.argsort(-out.scores, kind="stable")
        name = text if text is not None else "visual"
        return Instances(image_size=(loaded.height, loaded.width), xyxy=out.xyxy[order], scores=out.scores[order],
                         masks=out.masks[order], class_ids=np.zeros(len(order), np.int64), class_names=[name] * len(order))

    # ------------------------------------------------------------------ many classes
    def ground(self, image: ImageSource | LoadedImage, classes: str | Iterable[str], box_threshold: float | None = None,
               text_threshold: float | None = None, max_detections: int | None = None) -> Instances:
        """The Grounder's call with SAM 3 alone: each class prompt segmented on the same features.

        ``box_threshold`` is SAM 3's score threshold (default 0.5); ``text_threshold`` belongs to
        Grounding DINO and is refused. ``max_detections`` keeps the best-scoring instances.
        """
        from vfm.tasks.ontology import Ontology

        if text_threshold is not None:
            raise PromptError("--text-threshold is Grounding DINO's; SAM 3 has one score threshold (--box-threshold)")
        if max_detections is not None and (not isinstance(max_detections, (int, np.integer)) or max_detections < 1):
            raise PromptError(f"max_detections {max_detections!r} must be a whole number >= 1")
        onto = Ontology.parse(classes)
        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        h, w = loaded.height, loaded.width
        th = DEFAULT_THRESHOLD if box_threshold is None else check_threshold(box_threshold, "box threshold")
        parts = []
        with self._lock:
            vision = self._vision(loaded)
            for i, prompt in enumerate(onto.prompts):
                out = self.adapter.segment(vision, (h, w), prompt, (), (), th, DEFAULT_MASK_THRESHOLD)
                parts.append((i, out))
        masks = np.concatenate([o.masks for _, o in parts]) if parts else np.zeros((0, h, w), bool)
        res = Instances(image_size=(h, w), xyxy=np.concatenate([o.xyxy for _, o in parts]).reshape(-1, 4),
                        scores=np.concatenate([o.scores for _, o in parts]), masks=masks,
                        class_ids=np.concatenate([np.full(len(o.scores), i, np.int64) for i, o in parts]),
                        class_names=[onto.prompts[i] for i, o in parts for _ in range(len(o.scores))])
        order = np.argsort(-res.scores, kind="stable")
        if max_detections is not None:
            order = order[: int(max_detections)]
        return onto.relabel(res[order])


def _check_text(text: str | None) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise PromptError(f"text prompt {text!r} is not a string")
    text = text.strip()
    if not text:
        raise PromptError('the text prompt is empty; give a noun phrase, e.g. --text "yellow school bus"')
    return text


def _check_exemplars(exemplars: Sequence[Exemplar], h: int, w: int) -> tuple[list[list[float]], list[int]]:
    boxes, labels = [], []
    for box, positive in exemplars:
        try:
            b = [float(v) for v in box]
        except (TypeError, ValueError):
            raise PromptError(f"exemplar {box!r} is not 4 numbers X0,Y0,X1,Y1") from None
        if len(b) != 4 or not all(np.isfinite(b)):
            raise PromptError(f"exemplar {box!r} must be 4 numbers X0,Y0,X1,Y1 in pixels")
        if b[2] <= b[0] or b[3] <= b[1]:
            raise PromptError(f"exemplar {b} is empty; give X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0")
        if b[0] < 0 or b[1] < 0 or b[2] > w or b[3] > h:
            raise PromptError(f"exemplar {b} reaches outside the {w}x{h} image")
        boxes.append(b)
        labels.append(1 if positive else 0)
    return boxes, labels
