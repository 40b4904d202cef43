"""SAM3D: zero-shot 3D boxes from a LiDAR scan with nothing but a promptable segmenter.

    detector = Lidar3D.load("sam-vit-base")                  # segment-everything on the BEV picture
    result = detector.detect(read_points("000123.bin"), classes=["Car"])
    result.boxes                                             # vfm.lidar.boxes.Boxes3D (LiDAR frame)

The steps (Zhang et al. 2023, "SAM3D: Zero-Shot 3D Object Detection via Segment Anything Model"):

1. Keep the points inside the BEV range (vfm.lidar.bev.BEVGrid) and fit the ground plane
   (vfm.lidar.ground); points less than ``ground_threshold`` above it are ground and are removed.
2. Render the rest as a BEV picture (intensity, height, density) and dilate it.
3. Segment it: segment-everything (SAM's automatic mask generator, vfm.tasks.everything), SAM
   prompted with points / boxes in metres (:meth:`Lidar3D.load_prompted`), or any callable from the
   picture to :class:`vfm.Instances` with masks.
4. Lift each mask back to the points whose BEV pixel it covers and fit an oriented box to them:
   the heading of the smallest rectangle around their (x, y) (vfm.lidar.boxes.min_area_rectangle),
   its faces where the points' layers are along it and up (``_extent``: noise and stray points do
   not grow the box), the bottom on the ground plane under its centre (the lowest point where no
   plane was found or a point is lower).
5. Name each box by the size priors (vfm.lidar.priors), drop those no requested class holds and
   those with fewer than ``min_points`` points or a footprint over ``max_area`` m² (SAM3D's area
   filter: walls, kerbs, several objects in one mask), and suppress boxes overlapping a better-scored one
   by more than ``nms_iou`` in BEV (SAM masks an object at several granularities).

A box's score is its mask's score (SAM's predicted IoU for segment-everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from vfm.errors import PromptError
from vfm.lidar.bev import BEVGrid
from vfm.lidar.boxes import Boxes3D, iou_bev, min_area_rectangle, wrap_half_pi
from vfm.lidar.ground import GroundPlane, fit_ground
from vfm.lidar.io import PointCloud, PointCloudError
from vfm.lidar.priors import classify_size, parse_lidar_classes


@dataclass
class Lidar3DResult:
    boxes: Boxes3D
    bev: np.ndarray  # H x W x 3 uint8, the picture that was segmented
    grid: BEVGrid
    ground: GroundPlane | None
    points_in_range: int
    ground_points: int
    masks: int  # masks the segmenter returned


class Lidar3D:
    def __init__(self, segment: Callable[[np.ndarray], object], grid: BEVGrid | None = None, *, dilate: int = 1,
                 ground_threshold: float = 0.2, min_points: int = 5, nms_iou: float = 0.5, max_area: float = 80.0,
                 name: str = ""):
        if dilate < 0 or min_points < 1 or not 0 <= nms_iou <= 1 or not ground_threshold >= 0:
            raise PromptError("lidar3d: --dilate >= 0, --min-points >= 1, --nms-iou in 0..1 and "
                              "--ground-threshold >= 0 are required")
        self.segment = segment
        self.grid = grid or BEVGrid()
        self.dilate, self.ground_threshold, self.min_points, self.nms_iou = dilate, ground_threshold, min_points, nms_iou
        self.max_area = max_area
        self.name = name

    @classmethod
    def load(cls, model: str, grid: BEVGrid | None = None, *, device: str | None = None, precision: str = "auto",
             points_per_side: int = 32, pred_iou_thresh: float | None = None,
             stability_score_thresh: float | None = None, **kwargs) -> "Lidar3D":
        from vfm.tasks.everything import MaskGenerator
        from vfm.tasks.segment import Segmenter

        amg = {k: v for k, v in (("pred_iou_thresh", pred_iou_thresh), ("stability_score_thresh", stability_score_thresh))
               if v is not None}
        generator = MaskGenerator(Segmenter.load(model, device=device, precision=precision),
                                  points_per_side=points_per_side, **amg)
        return cls(generator.generate, grid, name=model, **kwargs)

    @classmethod
    def load_prompted(cls, model: str, points=(), boxes=(), grid: BEVGrid | None = None, *, device: str | None = None,
                      precision: str = "auto", **kwargs) -> "Lidar3D":
        """SAM prompted on the BEV picture instead of segment-everything: each point (x, y) or box
        (x0, y0, x1, y1), in metres of the LiDAR frame, is one prompt, one mask, at most one 3D box."""
        from vfm.tasks.segment import Segmenter

        grid = grid or BEVGrid()
        prompts = bev_prompts(grid, points, boxes)
        segmenter = Segmenter.load(model, device=device, precision=precision)
        return cls(lambda bev: segmenter.predict_batch(prompts, image=bev, return_logits=False), grid, name=model, **kwargs)

    def detect(self, cloud: PointCloud, classes=None) -> Lidar3DResult:
        wanted = parse_lidar_classes(classes)
        grid = self.grid
        xyz = cloud.xyz
        inside = np.flatnonzero(grid.inside(xyz))
        if not len(inside):
            lo, hi = xyz.min(axis=0), xyz.max(axis=0)
            raise PointCloudError(
                f"no point of '{cloud.name}' lies in the BEV range x {grid.x_range[0]:g}..{grid.x_range[1]:g}, "
                f"y {grid.y_range[0]:g}..{grid.y_range[1]:g}, z {grid.z_range[0]:g}..{grid.z_range[1]:g} m; the scan "
                f"spans x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}, z {lo[2]:.1f}..{hi[2]:.1f}: "
                "set --range and --z-range")
        pts = xyz[inside]
        ground = fit_ground(pts)
        above = ground.height(pts) > self.ground_threshold if ground is not None else np.ones(len(pts), bool)
        obj = inside[above]
        obj_xyz = xyz[obj]
        intensity = None if cloud.intensity is None else cloud.intensity[obj]
        bev = grid.render(obj_xyz, intensity, dilate=self.dilate)
        masks = self.segment(bev)
        rows, cols = grid.pixels(obj_xyz[:, :2]) if len(obj) else (np.zeros(0, int), np.zeros(0, int))
        found = []
        for i in range(len(masks)):
            mask = np.asarray(masks.mask(i), bool)
            members = np.flatnonzero(mask[rows, cols]) if len(obj) else np.zeros(0, int)
            if len(members) < self.min_points:
                continue
            box = self._fit(obj_xyz[members], ground)
            if box is None:
                continue
            centre, size, yaw = box
            if size[0] * size[1] > self.max_area:  # a mask of the road side, a wall, several objects
                continue
            cls_name = classify_size(*size, wanted)
            if cls_name is None:
                continue
            found.append((centre, size, yaw, float(masks.scores[i]), cls_name, obj[members]))
        boxes = _nms(found, self.nms_iou)
        return Lidar3DResult(boxes, bev, grid, ground, len(inside), int((~above).sum()), len(masks))

    def _fit(self, pts: np.ndarray, ground: GroundPlane | None):
        rect = min_area_rectangle(pts[:, :2])
        if rect is None:
            return None
        _, _, _, yaw = rect
        c, s = np.cos(yaw), np.sin(yaw)
        along = pts[:, 0] * c + pts[:, 1] * s
        across = -pts[:, 0] * s + pts[:, 1] * c
        (a0, a1), (b0, b1) = _extent(along), _extent(across)
        length, width = float(a1 - a0), float(b1 - b0)
        if min(length, width) <= 0:
            return None
        am, bm = (a0 + a1) / 2, (b0 + b1) / 2
        centre_xy = np.array([am * c - bm * s, am * s + bm * c])
        if width > length:
            length, width, yaw = width, length, wrap_half_pi(yaw + np.pi / 2)
        top = _extent(pts[:, 2])[1]
        lowest = float(pts[:, 2].min())
        bottom = min(float(ground.z_at(*centre_xy)), lowest) if ground is not None else lowest
        height = top - bottom
        if height <= 0:
            return None
        return np.array([centre_xy[0], centre_xy[1], bottom]), np.array([length, width, height]), float(yaw)


def bev_prompts(grid: BEVGrid, points=(), boxes=()) -> list:
    """SAM prompts (BEV pixels) for points and boxes given in metres; PromptError outside the range."""
    from vfm.tasks.prompts import Prompt

    def pixel(x, y):
        if not (grid.x_range[0] <= x <= grid.x_range[1] and grid.y_range[0] <= y <= grid.y_range[1]):
            raise PromptError(f"prompt at x={x:g}, y={y:g} m is outside the BEV range x {grid.x_range[0]:g}..{grid.x_range[1]:g}, "
                              f"y {grid.y_range[0]:g}..{grid.y_range[1]:g}; prompts are metres in the scan's frame")
        return (grid.y_range[1] - y) / grid.resolution, (grid.x_range[1] - x) / grid.resolution  # SAM's (X, Y)

    prompts = [Prompt(points=np.array([pixel(x, y)]), labels=np.array([1])) for x, y in points]
    for x0, y0, x1, y1 in boxes:
        (c0, r0), (c1, r1) = pixel(max(x0, x1), max(y0, y1)), pixel(min(x0, x1), min(y0, y1))
        prompts.append(Prompt(box=np.array([c0, r0, c1, r1])))
    if not prompts:
        raise PromptError("give at least one --point X,Y or --box X0,Y0,X1,Y1 (metres), or no prompt for segment-everything")
    return prompts


EDGE_BAND = 0.1  # metres


def _extent(v: np.ndarray) -> tuple[float, float]:
    """Where a face of the object is on an axis, at each end: the median of the points within
    EDGE_BAND of the 1st (99th) percentile. A face seen by the sensor is a layer of points spread
    by its noise; its median is the face, where the extreme point or a percentile lies outside it.
    Stray points (a neighbour caught by a dilated mask) move neither."""
    if len(v) < 20:
        return float(v.min()), float(v.max())
    lo, hi = np.quantile(v, (0.01, 0.99))
    return float(np.median(v[v <= lo + EDGE_BAND])), float(np.median(v[v >= hi - EDGE_BAND]))


def _nms(found: list, iou: float) -> Boxes3D:
    if not found:
        return Boxes3D.empty()
    order = sorted(range(len(found)), key=lambda i: -found[i][3])
    found = [found[i] for i in order]
    boxes = Boxes3D(np.array([f[0] for f in found]), np.array([f[1] for f in found]), np.array([f[2] for f in found]),
                    np.array([f[3] for f in found]), [f[4] for f in found], [np.asarray(f[5]) for f in found])
    corners = boxes.corners_bev()
    overlaps = iou_bev(corners, corners)
    keep: list[int] = []
    for i in range(len(boxes)):
        if all(overlaps[i, j] <= iou for j in keep):
            keep.append(i)
    return boxes[np.array(keep)]
