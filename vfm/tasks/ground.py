"""Text -> masks (Grounded-SAM): an open-vocabulary detector finds boxes for class names, a promptable
segmenter turns every box into a mask in one batched decoder call.

    g = Grounder.load(detector="grounding-dino-tiny", segmenter="sam-vit-base")
    res = g.ground("photo.jpg", "cat, remote control")
    res.masks, res.xyxy, res.class_names, res.scores   # scores: detection scores
    Grounder.load(segmenter="sam3")                      # SAM 3 alone (vfm.tasks.concept)

The result keeps the detector's boxes (XYXY pixels, clipped to the image), scores, ``class_ids``
(positions in the parsed class list) and ``class_names``; ``data["mask_score"]`` holds the
segmenter's predicted IoU of each mask. Images without detections give an empty result.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.models.registry import is_concept_model
from vfm.results.instances import Instances
from vfm.tasks.detect import Detector

DEFAULT_DETECTOR = "grounding-dino-tiny"


class Grounder:
    """A detector and a segmenter working as one: class names in, named masks out."""

    def __init__(self, detector: Detector, segmenter):
        self.detector = detector
        self.segmenter = segmenter

    @classmethod
    def load(
        cls, detector: str | None = None, segmenter: str = "sam-vit-base", device: str | None = None,
        precision: str = "auto", segmenter_precision: str | None = None, backend: str | None = None,
    ) -> "Grounder":
        """A detector (default grounding-dino-tiny) + segmenter; a SAM 3 ``segmenter`` needs no detector
        and gives a :class:`vfm.tasks.concept.ConceptSegmenter`, which has the same ``ground`` call."""
        from vfm.tasks.segment import Segmenter

        if is_concept_model(segmenter):
            from vfm.tasks.concept import ConceptSegmenter

            if detector is not None:
                raise PromptError(f"--segmenter {segmenter} finds the classes itself (SAM 3: text in, masks out); "
                                  "drop --detector")
            return ConceptSegmenter.load(segmenter, device=device, precision=precision)
        return cls(Detector.load(detector or DEFAULT_DETECTOR, device=device, precision=precision),
                   Segmenter.load(segmenter, device=device, precision=segmenter_precision or precision, backend=backend))

    def ground(
        self,
        image: ImageSource | LoadedImage,
        classes: str | Iterable[str],
        box_threshold: float | None = None,
        text_threshold: float | None = None,
        max_detections: int | None = None,
    ) -> Instances:
        """Masks of every detected instance of ``classes`` (see :meth:`Detector.detect` for thresholds
        and ``max_detections``)."""
        from vfm.tasks.prompts import Prompt

        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        dets = self.detector.detect(loaded.pixels, classes, box_threshold=box_threshold, text_threshold=text_threshold,
                                    max_detections=max_detections)
        h, w = loaded.height, loaded.width
        boxes = dets.xyxy
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # boxes squeezed flat by clipping
        dets = dets[np.flatnonzero(valid)]
        if len(dets) == 0:
            empty = Instances.empty((h, w))
            empty.class_ids = np.zeros((0,), np.int64)
            empty.class_names = []
            empty.data["mask_score"] = np.zeros((0,), np.float32)
            return empty
        prompts = [Prompt(box=b) for b in dets.xyxy]
        masks = self.segmenter.predict_batch(prompts, multimask=False, image=loaded, return_logits=False)
        return Instances(
            image_size=(h, w),
            xyxy=dets.xyxy,
            scores=dets.scores,
            masks=masks.mask_array(),
            class_ids=dets.class_ids,
            class_names=dets.class_names,
            prompts=[p.to_json() for p in prompts],
            data={"mask_score": masks.scores.astype(np.float32)},
        )
