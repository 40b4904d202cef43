"""`SemanticMap`: a class id for every pixel, with the model's class names.

``labels[y, x]`` indexes ``class_names`` (the checkpoint's ``id2label`` order; 0-based, as the
indexed PNG stores it). ``to_instances()`` gives one instance per class present (its mask, score
1.0, ``class_ids`` = the class index), so semantic maps go through the same COCO documents,
overlays and datasets as every other result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vfm.results.instances import Instances


@dataclass
class SemanticMap:
    labels: np.ndarray
    class_names: list[str]
    model: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int32)
        if self.labels.ndim != 2:
            raise ValueError(f"a semantic map is HxW, got shape {self.labels.shape}")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must index the {len(self.class_names)} class names")

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.labels.shape[0]), int(self.labels.shape[1])

    def present(self) -> list[int]:
        """Class indices that cover at least one pixel, ascending."""
        return [int(c) for c in np.unique(self.labels)]

    def to_instances(self) -> Instances:
        classes = self.present()
        if not classes:
            return Instances.empty(self.image_size)
        masks = np.stack([self.labels == c for c in classes])
        return Instances.from_masks(masks, np.ones(len(classes), np.float32), class_ids=np.array(classes, np.int64),
                                    class_names=[self.class_names[c] for c in classes])

    def to_json(self) -> dict[str, Any]:
        total = self.labels.size or 1
        ids, counts = np.unique(self.labels, return_counts=True)
        return {"model": self.model, "classes": [
            {"id": int(c), "name": self.class_names[int(c)], "pixels": int(n), "share": round(float(n) / total, 6)}
            for c, n in zip(ids, counts)]}
