"""`Instances`: the one result type for masks and boxes, returned by every instance-level task.

Conventions (all in the original image, after EXIF orientation):

* ``xyxy``: Nx4 float32, XYXY pixel coordinates; a box derived from a mask spans pixel edges
  (a mask on columns 3..5 has x0=3, x1=6), the same as ``pycocotools.mask.toBbox`` in XYWH.
* ``masks``: NxHxW bool bitmaps, and/or ``rles``: N COCO compressed RLEs (``counts`` str). Either
  form is derived from the other on demand, so exporters can always ask for the one they need;
  large mask sets (segment everything) are kept as RLE only.
* ``scores``: N float32 confidences (predicted IoU for SAM, detection score for detectors).
* ``class_ids`` / ``class_names``: optional per-instance category id (int) and name.
* ``prompts``: optional per-instance JSON-ready dict describing the prompt that produced it.
* ``data``: extra per-instance arrays or lists of length N (``stability_score``, ``low_res_logits``,
  ``point_coords``, ``crop_box``...), filtered together with everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from vfm.results.rle import decode_rle, encode_rles, masks_to_xyxy, rle_area, rles_to_xyxy


@dataclass
class Instances:
    image_size: tuple[int, int]  # (height, width) of the original image
    xyxy: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None
    rles: list[dict[str, Any]] | None = None
    class_ids: np.ndarray | None = None
    class_names: list[str] | None = None
    prompts: list[dict[str, Any] | None] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.image_size)
        if h <= 0 or w <= 0:
            raise ValueError(f"image_size must be (height, width) > 0, got {self.image_size}")
        self.image_size = (h, w)
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4) if np.size(self.xyxy) == 0 else np.asarray(
            self.xyxy, dtype=np.float32
        )
        n = self.xyxy.shape[0]
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        _check_len("scores", len(self.scores), n)
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            if self.masks.ndim != 3 or self.masks.shape[0] != n or self.masks.shape[1:] != (h, w):
                raise ValueError(f"masks must have shape ({n}, {h}, {w}), got {self.masks.shape}")
        if self.rles is not None:
            self.rles = list(self.rles)
            _check_len("rles", len(self.rles), n)
            for rle in self.rles:
                if list(rle["size"]) != [h, w]:
                    raise ValueError(f"RLE size {rle['size']} does not match image_size {[h, w]}")
        if self.class_ids is not None:
            self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
            _check_len("class_ids", len(self.class_ids), n)
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
            _check_len("class_names", len(self.class_names), n)
        if self.prompts is not None:
            self.prompts = list(self.prompts)
            _check_len("prompts", len(self.prompts), n)
        for key, value in self.data.items():
            _check_len(f"data[{key!r}]", len(value), n)

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, image_size: tuple[int, int], *, with_masks: bool = True, labeled: bool = False,
              **kwargs: Any) -> "Instances":
        """No instances; ``labeled`` gives them (empty) class ids and names, as a classed result has."""
        h, w = image_size
        if labeled:
            kwargs.setdefault("class_ids", np.zeros(0, np.int64))
            kwargs.setdefault("class_names", [])
        return cls(
            image_size=(h, w),
            xyxy=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            masks=np.zeros((0, h, w), bool) if with_masks else None,
            **kwargs,
        )

    @classmethod
    def from_masks(cls, masks: np.ndarray, scores: Sequence[float], **kwargs: Any) -> "Instances":
        """Build from NxHxW masks; boxes are the masks' tight boxes."""
        masks = np.asarray(masks, dtype=bool)
        return cls(image_size=masks.shape[1:], xyxy=masks_to_xyxy(masks), scores=scores, masks=masks, **kwargs)

    @classmethod
    def from_rles(cls, rles: list[dict[str, Any]], scores: Sequence[float], **kwargs: Any) -> "Instances":
        """Build from COCO RLEs; boxes are the masks' tight boxes."""
        if not rles:
            raise ValueError("from_rles needs at least one RLE; use Instances.empty for none")
        return cls(image_size=tuple(rles[0]["size"]), xyxy=rles_to_xyxy(rles), scores=scores, rles=rles, **kwargs)

    @staticmethod
    def concatenate(items: Sequence["Instances"]) -> "Instances":
        """Join results of the same image (same fields present in each)."""
        if not items:
            raise ValueError("concatenate needs at least one Instances")
        first = items[0]
        if any(i.image_size != first.image_size for i in items):
            raise ValueError("cannot concatenate Instances of different image sizes")

        def join(attr: str):
            values = [getattr(i, attr) for i in items]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                if attr == "masks":
                    return np.concatenate([i.mask_array() for i in items])
                if attr == "rles":
                    return [r for i in items for r in i.rle_list()]
                raise ValueError(f"cannot concatenate: '{attr}' is set on some items only")
            if isinstance(values[0], np.ndarray):
                return np.concatenate(values)
            return [x for v in values for x in v]

        keys = set(first.data)
        if any(set(i.data) != keys for i in items):
            raise ValueError("cannot concatenate: items carry different data keys")
        data = {}
        for k in keys:
            vals = [i.data[k] for i in items]
            data[k] = np.concatenate(vals) if isinstance(vals[0], np.ndarray) else [x for v in vals for x in v]
        return Instances(
            image_size=first.image_size,
            xyxy=np.concatenate([i.xyxy for i in items]),
            scores=np.concatenate([i.scores for i in items]),
            masks=join("masks"),
            rles=join("rles"),
            class_ids=join("class_ids"),
            class_names=join("class_names"),
            prompts=join("prompts"),
            data=data,
        )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __iter__(self) -> Iterator["Instances"]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> "Instances":
        """Numpy-style selection: an int, a slice, an index array or a boolean array of length N."""
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} out of range for {len(self)} instances")
            index = [int(index) % len(self)]
        idx = np.arange(len(self))[index]

        def pick(seq):
            return None if seq is None else [seq[i] for i in idx]

        return Instances(
            image_size=self.image_size,
            xyxy=self.xyxy[idx],
            scores=self.scores[idx],
            masks=None if self.masks is None else self.masks[idx],
            rles=pick(self.rles),
            class_ids=None if self.class_ids is None else self.class_ids[idx],
            class_names=pick(self.class_names),
            prompts=pick(self.prompts),
            data={k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in self.data.items()},
        )

    @property
    def has_masks(self) -> bool:
        return self.masks is not None or self.rles is not None

    def rle_list(self) -> list[dict[str, Any]]:
        """COCO compressed RLEs of all masks (encoded from bitmaps once, then kept)."""
        if self.rles is None:
            if self.masks is None:
                raise ValueError("these instances have no masks (boxes only)")
            self.rles = encode_rles(self.masks)
        return self.rles

    def mask_array(self) -> np.ndarray:
        """NxHxW boolean masks (decoded from RLE if needed; not kept, to bound memory)."""
        if self.masks is not None:
            return self.masks
        if self.rles is None:
            raise ValueError("these instances have no masks (boxes only)")
        h, w = self.image_size
        out = np.zeros((len(self.rles), h, w), dtype=bool)
        for i, rle in enumerate(self.rles):
            out[i] = decode_rle(rle)
        return out

    def mask(self, i: int) -> np.ndarray:
        """The i-th mask as an HxW boolean array."""
        if self.masks is not None:
            return self.masks[i]
        if self.rles is None:
            raise ValueError("these instances have no masks (boxes only)")
        return decode_rle(self.rles[i])

    @property
    def areas(self) -> np.ndarray:
        """Mask areas in pixels (box areas for box-only instances)."""
        if self.masks is not None:
            return np.count_nonzero(self.masks, axis=(1, 2)).astype(np.float64)  # any memory layout, no copy
        if self.rles is not None:
            return np.array([rle_area(r) for r in self.rles], dtype=np.float64)
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return (wh[:, 0] * wh[:, 1]).astype(np.float64)

    def drop_masks(self) -> "Instances":
        """A copy with RLE masks only (dense bitmaps dropped) — bounded memory for large sets."""
        rles = self.rle_list() if self.has_masks else None
        return Instances(
            image_size=self.image_size, xyxy=self.xyxy, scores=self.scores, rles=rles,
            class_ids=self.class_ids, class_names=self.class_names, prompts=self.prompts, data=dict(self.data),
        )

    # ------------------------------------------------------------------ supervision
    def to_supervision(self):
        """Convert to ``supervision.Detections`` (needs the ``supervision`` extra).

        Class-less results (promptable segmentation, segment everything) get ``class_id`` 0 for
        every instance, so supervision's annotators, which colour by class by default, work as is.
        """
        from vfm.errors import require

        sv = require("supervision", "supervision")
        data: dict[str, Any] = {}
        if self.class_names is not None:
            data["class_name"] = np.array(self.class_names, dtype=object)
        for k, v in self.data.items():
            if isinstance(v, np.ndarray):
                data[k] = v
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            mask=self.mask_array() if self.has_masks else None,
            confidence=self.scores.astype(np.float32),
            class_id=np.zeros(len(self), dtype=int) if self.class_ids is None else self.class_ids.astype(int),
            data=data,
        )

    @classmethod
    def from_supervision(cls, detections, image_size: tuple[int, int] | None = None) -> "Instances":
        """Build from ``supervision.Detections``. ``image_size`` (H, W) is needed when it has no masks."""
        mask = detections.mask
        if mask is not None:
            size = tuple(mask.shape[1:])
            if image_size is not None and tuple(image_size) != size:
                raise ValueError(f"image_size {image_size} does not match mask shape {size}")
            image_size = size
        if image_size is None:
            raise ValueError("from_supervision needs image_size=(height, width) for detections without masks")
        n = len(detections)
        scores = detections.confidence if detections.confidence is not None else np.ones(n, np.float32)
        names = detections.data.get("class_name") if detections.data else None
        extra = {k: np.asarray(v) for k, v in (detections.data or {}).items() if k != "class_name"}
        return cls(
            image_size=image_size,
            xyxy=detections.xyxy,
            scores=scores,
            masks=mask,
            class_ids=detections.class_id,
            class_names=None if names is None else [str(x) for x in names],
            data=extra,
        )

    def __repr__(self) -> str:
        kinds = "masks" if self.masks is not None else ("rle" if self.rles is not None else "boxes")
        return f"Instances(n={len(self)}, image_size={self.image_size}, {kinds}, data={sorted(self.data)})"


def _check_len(name: str, got: int, n: int) -> None:
    if got != n:
        raise ValueError(f"{name} has length {got}, expected {n} (one per instance)")
