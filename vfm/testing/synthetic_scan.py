"""A synthetic LiDAR scan with known boxes: a ground plane and cuboids sampled as points, with noise.

    cloud, truth = synthetic_scan(seed=0)        # vfm.lidar.io.PointCloud, vfm.lidar.boxes.Boxes3D
    masks = footprint_masks(truth, BEVGrid())    # the "perfect segmenter": true BEV footprints

Used by the SAM3D tests and bench/dense.py. Points cover each cuboid's four sides and its top
(the ground hides its bottom), at ``density`` points per square metre; the ground is a plane
``ground_z`` m below the sensor with a slight tilt, sampled over the whole range.
"""

from __future__ import annotations

import numpy as np

from vfm.lidar.bev import BEVGrid
from vfm.lidar.boxes import Boxes3D, footprint
from vfm.lidar.io import PointCloud

BOXES = [  # x, y, l, w, h, yaw  (KITTI-like: cars, a pedestrian, a cyclist)
    (12.0, 3.0, 4.2, 1.8, 1.5, 0.3),
    (-8.0, -6.0, 4.6, 1.9, 1.6, -1.1),
    (20.0, -10.0, 3.9, 1.7, 1.45, 1.45),
    (6.0, -4.0, 0.6, 0.6, 1.75, 0.0),
    (-15.0, 12.0, 1.8, 0.6, 1.7, 0.7),
]


def synthetic_scan(*, seed: int = 0, boxes=BOXES, ground_z: float = -1.73, tilt: tuple[float, float] = (0.01, -0.005),
                   density: float = 150.0, ground_density: float = 4.0, extent: float = 30.0,
                   noise: float = 0.02) -> tuple[PointCloud, Boxes3D]:
    rng = np.random.default_rng(seed)
    gx, gy = tilt

    def ground_at(x, y):
        return ground_z + gx * x + gy * y

    parts, intensities = [], []
    n_ground = int(ground_density * (2 * extent) ** 2)
    xy = rng.uniform(-extent, extent, size=(n_ground, 2))
    parts.append(np.c_[xy, ground_at(xy[:, 0], xy[:, 1])])
    intensities.append(rng.uniform(0.0, 0.2, n_ground))
    centers, sizes, yaws = [], [], []
    for x, y, l, w, h, yaw in boxes:
        z0 = float(ground_at(x, y))
        c, s = np.cos(yaw), np.sin(yaw)
        faces = []
        for along, across, dims in ((0.5, None, (w, h)), (-0.5, None, (w, h)), (None, 0.5, (l, h)), (None, -0.5, (l, h))):
            n = max(int(density * dims[0] * dims[1]), 10)
            a = rng.uniform(-0.5, 0.5, n) * l if along is None else np.full(n, along * l)
            b = rng.uniform(-0.5, 0.5, n) * w if across is None else np.full(n, across * w)
            zz = z0 + 0.05 + rng.uniform(0, 1, n) * (h - 0.05)  # nothing in the first 5 cm above the road
            faces.append(np.c_[a, b, zz])
        n = max(int(density * l * w), 10)
        faces.append(np.c_[rng.uniform(-0.5, 0.5, n) * l, rng.uniform(-0.5, 0.5, n) * w, np.full(n, z0 + h)])
        local = np.concatenate(faces)
        world = np.c_[x + local[:, 0] * c - local[:, 1] * s, y + local[:, 0] * s + local[:, 1] * c, local[:, 2]]
        parts.append(world)
        intensities.append(rng.uniform(0.3, 1.0, len(world)))
        centers.append((x, y, z0))
        sizes.append((l, w, h))
        yaws.append(yaw)
    xyz = np.concatenate(parts)
    xyz = xyz + rng.normal(0, noise, xyz.shape)
    order = rng.permutation(len(xyz))
    cloud = PointCloud(xyz[order].astype(np.float32), np.concatenate(intensities)[order].astype(np.float32), name="synthetic")
    truth = Boxes3D(np.array(centers, float), np.array(sizes, float), np.array(yaws, float), np.ones(len(boxes)),
                    ["Object"] * len(boxes), [])
    return cloud, truth


def footprint_masks(boxes: Boxes3D, grid: BEVGrid, *, margin: float = 0.15):
    """vfm.Instances: one BEV mask per box, its footprint grown by ``margin`` m (as a dilated SAM mask is)."""
    from shapely import contains_xy
    from shapely.geometry import Polygon

    from vfm.results.instances import Instances

    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    centres = grid.to_metres(rows.ravel() + 0.5, cols.ravel() + 0.5)
    corners = footprint(boxes.centers[:, :2], boxes.sizes[:, 0] + 2 * margin, boxes.sizes[:, 1] + 2 * margin, boxes.yaws)
    masks = np.stack([contains_xy(Polygon(c), centres[:, 0], centres[:, 1]).reshape(grid.height, grid.width)
                      for c in corners])
    return Instances.from_masks(masks, np.linspace(0.99, 0.9, len(boxes)).astype(np.float32))
