"""Prompts for promptable segmentation, in original-image pixels, validated against the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from vfm.errors import PromptError


@dataclass
class Prompt:
    """One prompt → one mask (or three with multimask).

    points: Nx2 XY pixels; labels: N ints (1 positive, 0 negative); box: XYXY pixels;
    mask_input: a previous answer's low-res logits (LxL, e.g. 256x256) or an HxW binary mask.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.points is not None:
            pts = np.asarray(self.points, dtype=np.float64)
            if pts.size == 0:
                pts = None
            elif pts.ndim != 2 or pts.shape[1] != 2:
                raise PromptError(f"points must be a list of (x, y) pairs, got shape {pts.shape}")
            self.points = pts
        if self.points is not None:
            if self.labels is None:
                self.labels = np.ones(len(self.points), dtype=np.int64)
            labels = np.asarray(self.labels).reshape(-1)
            if len(labels) != len(self.points):
                raise PromptError(f"got {len(self.points)} points but {len(labels)} labels; give one label per point")
            if not np.isin(labels, (0, 1)).all():
                raise PromptError(f"point labels must be 1 (positive) or 0 (negative), got {sorted(set(labels.tolist()))}")
            self.labels = labels.astype(np.int64)
        elif self.labels is not None and len(np.asarray(self.labels).reshape(-1)) > 0:
            raise PromptError("labels given without points")
        else:
            self.labels = None
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float64).reshape(-1)
            if box.shape != (4,):
                raise PromptError(f"a box is 4 numbers x0,y0,x1,y1, got {box.tolist()}")
            self.box = box
        if self.mask_input is not None:
            m = np.asarray(self.mask_input)
            if m.ndim == 3 and m.shape[0] == 1:
                m = m[0]
            if m.ndim != 2:
                raise PromptError(f"mask_input must be a 2-D array, got shape {m.shape}")
            self.mask_input = m
        if self.points is None and self.box is None and self.mask_input is None:
            raise PromptError("a prompt needs at least one point, a box or a mask input")

    @classmethod
    def from_scribble(
        cls, polyline: Sequence[Sequence[float]], label: int = 1, *, spacing: float = 16.0, max_points: int = 24
    ) -> "Prompt":
        """A scribble (polyline of XY pixels) → points sampled evenly along it (at most ``max_points``)."""
        pts = scribble_to_points(polyline, spacing=spacing, max_points=max_points)
        return cls(points=pts, labels=np.full(len(pts), label, dtype=np.int64))

    def check_inside(self, height: int, width: int) -> None:
        """Raise PromptError if a point or box lies outside a ``width`` x ``height`` image."""
        if self.points is not None:
            for x, y in self.points:
                if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height):
                    raise PromptError(
                        f"point ({x:g}, {y:g}) is outside the {width}x{height} image "
                        f"(x must be in [0, {width}), y in [0, {height}))"
                    )
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not np.isfinite(self.box).all() or not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise PromptError(
                    f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not a box inside the {width}x{height} image "
                    f"(need 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height})"
                )

    @property
    def shape_key(self) -> tuple[int, bool, bool]:
        """Prompts with the same key can be decoded in one batch with exactly the same result."""
        return (0 if self.points is None else len(self.points), self.box is not None, self.mask_input is not None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.points is not None:
            out["points"] = [[float(x), float(y)] for x, y in self.points]
            out["labels"] = [int(v) for v in self.labels]
        if self.box is not None:
            out["box"] = [float(v) for v in self.box]
        if self.mask_input is not None:
            out["mask_input"] = True
        return out


def scribble_to_points(polyline: Sequence[Sequence[float]], *, spacing: float = 16.0, max_points: int = 24) -> np.ndarray:
    """Sample points along a polyline every ``spacing`` pixels (both ends included), at most ``max_points``."""
    line = np.asarray(polyline, dtype=np.float64)
    if line.ndim != 2 or line.shape[1] != 2 or len(line) == 0:
        raise PromptError("a scribble is a list of (x, y) points")
    if len(line) == 1:
        return line.copy()
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total == 0:
        return line[:1].copy()
    n = int(np.clip(np.floor(total / max(spacing, 1e-6)) + 1, 2, max_points))
    t = np.linspace(0.0, total, n)
    x = np.interp(t, cum, line[:, 0])
    y = np.interp(t, cum, line[:, 1])
    return np.stack([x, y], axis=1)
