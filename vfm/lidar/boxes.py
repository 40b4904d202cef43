"""Oriented 3D boxes in the LiDAR frame, fitted to points, and their BEV / 3D IoU.

A box is its bottom centre (x, y, z), its size (l along the heading, w across, h up) and its yaw
(the heading's angle from +x towards +y, radians, in (-pi/2, pi/2]: a box fitted to points has
no front or back). KITTI's camera-frame labels are made from these in vfm.formats.kitti.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Boxes3D:
    centers: np.ndarray  # N x 3 bottom centres
    sizes: np.ndarray  # N x 3 (l, w, h)
    yaws: np.ndarray  # N
    scores: np.ndarray  # N
    class_names: list[str] = field(default_factory=list)
    point_indices: list[np.ndarray] = field(default_factory=list)  # indices into the scan as read

    @classmethod
    def empty(cls) -> "Boxes3D":
        return cls(np.zeros((0, 3), np.float64), np.zeros((0, 3), np.float64), np.zeros(0), np.zeros(0), [], [])

    def __len__(self) -> int:
        return len(self.yaws)

    def __getitem__(self, idx) -> "Boxes3D":
        idx = np.arange(len(self))[idx]
        return Boxes3D(self.centers[idx], self.sizes[idx], self.yaws[idx], self.scores[idx],
                       [self.class_names[i] for i in idx], [self.point_indices[i] for i in idx] if self.point_indices else [])

    def corners_bev(self) -> np.ndarray:
        """N x 4 x 2 footprint corners (x, y), counter-clockwise."""
        return footprint(self.centers[:, :2], self.sizes[:, 0], self.sizes[:, 1], self.yaws)

    def to_json(self) -> list[dict]:
        out = []
        for i in range(len(self)):
            item = {"class": self.class_names[i], "score": round(float(self.scores[i]), 6),
                    "center": [round(float(v), 4) for v in self.centers[i]],
                    "size": [round(float(v), 4) for v in self.sizes[i]], "yaw": round(float(self.yaws[i]), 6)}
            if self.point_indices:
                item["num_points"] = int(len(self.point_indices[i]))
                item["points"] = [int(j) for j in self.point_indices[i]]
            out.append(item)
        return out


def footprint(centers_xy: np.ndarray, lengths, widths, yaws) -> np.ndarray:
    c, s = np.cos(yaws), np.sin(yaws)
    local = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])  # (along, across)
    along = local[None, :, 0] * np.asarray(lengths)[:, None]
    across = local[None, :, 1] * np.asarray(widths)[:, None]
    x = centers_xy[:, None, 0] + along * c[:, None] - across * s[:, None]
    y = centers_xy[:, None, 1] + along * s[:, None] + across * c[:, None]
    return np.stack([x, y], axis=-1)


def min_area_rectangle(xy: np.ndarray) -> tuple[np.ndarray, float, float, float] | None:
    """(centre xy, length, width, yaw) of the smallest rectangle holding the points; None when degenerate.

    shapely's minimum rotated rectangle (rotating calipers on the convex hull); length is the longer side.
    """
    from vfm.errors import require

    require("shapely", "lidar")
    from shapely.geometry import MultiPoint

    rect = MultiPoint(np.asarray(xy, np.float64)).minimum_rotated_rectangle
    if rect.geom_type != "Polygon":
        return None
    pts = np.asarray(rect.exterior.coords)[:4]
    e1, e2 = pts[1] - pts[0], pts[2] - pts[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    if min(l1, l2) <= 0:
        return None
    edge, length, width = (e1, l1, l2) if l1 >= l2 else (e2, l2, l1)
    yaw = float(np.arctan2(edge[1], edge[0]))
    yaw = wrap_half_pi(yaw)
    return pts.mean(axis=0), length, width, yaw


def wrap_half_pi(angle):
    """An undirected heading in (-pi/2, pi/2]."""
    a = (np.asarray(angle, dtype=np.float64) + np.pi / 2) % np.pi - np.pi / 2
    a = np.where(a <= -np.pi / 2 + 1e-12, a + np.pi, a)
    return float(a) if np.ndim(a) == 0 else a


def polygon_iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(intersection area, union area) of two convex polygons given as K x 2 corners."""
    from vfm.errors import require

    require("shapely", "lidar")
    from shapely.geometry import Polygon

    pa, pb = Polygon(a), Polygon(b)
    inter = pa.intersection(pb).area
    return inter, pa.area + pb.area - inter


def iou_bev(a_corners: np.ndarray, b_corners: np.ndarray) -> np.ndarray:
    """Pairwise BEV IoU, N x M."""
    out = np.zeros((len(a_corners), len(b_corners)))
    for i, a in enumerate(a_corners):
        for j, b in enumerate(b_corners):
            inter, union = polygon_iou(a, b)
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def iou_3d(a_corners, a_z: np.ndarray, b_corners, b_z: np.ndarray) -> np.ndarray:
    """Pairwise 3D IoU, N x M; ``*_z`` are N x 2 (bottom, top) of the boxes' vertical extents."""
    out = np.zeros((len(a_corners), len(b_corners)))
    for i, a in enumerate(a_corners):
        for j, b in enumerate(b_corners):
            inter, union = polygon_iou(a, b)
            area_a, area_b = _area(a), _area(b)
            dz = max(0.0, min(a_z[i, 1], b_z[j, 1]) - max(a_z[i, 0], b_z[j, 0]))
            inter3 = inter * dz
            union3 = area_a * (a_z[i, 1] - a_z[i, 0]) + area_b * (b_z[j, 1] - b_z[j, 0]) - inter3
            out[i, j] = inter3 / union3 if union3 > 0 else 0.0
    return out


def _area(corners: np.ndarray) -> float:
    """Shoelace area of a simple polygon."""
    x, y = corners[:, 0], corners[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)
