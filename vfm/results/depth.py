"""`DepthMap`: the result type of monocular depth estimation, one float per pixel of the original image.

``kind`` says how to read ``values``:

* ``"metric"`` (Depth Anything V2 Metric, ZoeDepth, Depth Pro): depth in metres along the camera
  axis, larger = farther.
* ``"relative"`` (Depth Anything V2, DPT / MiDaS): relative inverse depth (disparity) up to an
  unknown scale and shift, larger = nearer. Only order and ratios of differences mean anything; to
  compare with metres, fit a scale and shift first (``vfm eval --task depth`` does).

``values`` is HxW float32 at the original image's resolution (EXIF orientation applied), exactly
transformers' ``post_process_depth_estimation`` output. Depth Pro also estimates the camera:
``extras["focal_length"]`` (pixels) and ``extras["field_of_view"]`` (degrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("relative", "metric")
UNITS = {"metric": "metre", "relative": "relative inverse depth (larger = nearer)"}


@dataclass
class DepthMap:
    values: np.ndarray
    kind: str
    model: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2:
            raise ValueError(f"a depth map is HxW, got shape {self.values.shape}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.values.shape[0]), int(self.values.shape[1])

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    def to_json(self) -> dict[str, Any]:
        """Summary of the map (the values themselves go to .npy / PNG files)."""
        finite = self.values[np.isfinite(self.values)]
        doc = {"kind": self.kind, "unit": self.unit, "model": self.model,
               "min": float(finite.min()) if finite.size else None, "max": float(finite.max()) if finite.size else None,
               "median": float(np.median(finite)) if finite.size else None}
        doc.update({k: float(v) for k, v in self.extras.items()})
        return doc
