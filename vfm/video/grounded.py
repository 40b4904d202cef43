"""Grounded tracking: class names -> boxes on the first frame (open-vocabulary detector) -> tracked
objects, with optional re-detection every N frames that starts a new object for each detection no
tracked object covers (as Grounded-SAM-2 does).

A detection is "covered" when its box overlaps the box of a tracked object's mask on that frame
with IoU >= ``match_iou``; uncovered detections become new object ids (next free id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vfm.results.rle import masks_to_xyxy
from vfm.video.prompts import MAX_OBJECT_ID, ObjectPrompt
from vfm.video.reader import VideoFrame
from vfm.video.tracker import TrackedObject


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of Nx4 and Mx4 XYXY boxes (NxM)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class GroundedPrompter:
    """A ``discover`` callback for :meth:`VideoTracker.track`: detects ``classes`` on the first frame
    read and, with ``redetect_every`` N > 0, on every Nth frame after it."""

    detector: object  # vfm.tasks.detect.Detector
    classes: list[str]
    box_threshold: float | None = None
    text_threshold: float | None = None
    redetect_every: int = 0
    match_iou: float = 0.5
    max_objects: int = MAX_OBJECT_ID
    first_id: int = 1
    categories: dict[int, str] = field(default_factory=dict)  # object id -> class name
    _seen: int = 0

    def __call__(self, frame: VideoFrame, objects: list[TrackedObject]) -> list[ObjectPrompt]:
        position = self._seen
        self._seen += 1
        if position and not (self.redetect_every and position % self.redetect_every == 0):
            return []
        found = self.detector.detect(frame.pixels, self.classes, box_threshold=self.box_threshold,
                                     text_threshold=self.text_threshold)
        if len(found) == 0:
            return []
        live = [o for o in objects if o.mask.any()]
        tracked = masks_to_xyxy(np.stack([o.mask for o in live])) if live else np.zeros((0, 4), np.float32)
        iou = box_iou(np.asarray(found.xyxy, dtype=np.float64), tracked.astype(np.float64))
        next_id = max([self.first_id - 1, *self.categories, *(o.id for o in objects)]) + 1
        prompts = []
        for i in np.argsort(-np.asarray(found.scores)):
            if iou.shape[1] and iou[i].max() >= self.match_iou:
                continue
            if next_id > self.max_objects:
                break
            box = tuple(float(v) for v in found.xyxy[i])
            prompts.append(ObjectPrompt(frame.index, next_id, box=box))
            self.categories[next_id] = found.class_names[i] if found.class_names else "object"
            # a second detection of the same new object on this frame is not another object
            iou = np.concatenate([iou, box_iou(np.asarray(found.xyxy, dtype=np.float64), np.array([box]))], axis=1)
            next_id += 1
        return prompts
