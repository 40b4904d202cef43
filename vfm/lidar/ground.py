"""The ground plane of a scan: RANSAC on near-horizontal planes, refined by least squares on its inliers.

SAM3D removes ground points before it renders the BEV (the road would otherwise be one big mask),
and vfm also puts each box's bottom on the plane: the lowest LiDAR return of an object is often
above the ground (occlusion, the removed ground band), the plane under the box is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroundPlane:
    normal: np.ndarray  # unit (a, b, c), c > 0
    offset: float  # d of a x + b y + c z + d = 0

    def height(self, xyz: np.ndarray) -> np.ndarray:
        """Signed height of points above the plane (metres, along z)."""
        return xyz[:, 2] - self.z_at(xyz[:, 0], xyz[:, 1])

    def z_at(self, x, y):
        a, b, c = self.normal
        return -(a * np.asarray(x) + b * np.asarray(y) + self.offset) / c


def fit_ground(xyz: np.ndarray, *, threshold: float = 0.15, iterations: int = 200, max_tilt_deg: float = 15.0,
               seed: int = 0, sample: int = 50_000) -> GroundPlane | None:
    """The plane with most points within ``threshold`` m among planes tilted at most ``max_tilt_deg``.

    None when the scan has too few points or no such plane holds 10 % of them (then nothing is
    removed and boxes stand on their lowest point).
    """
    if len(xyz) < 50:
        return None
    rng = np.random.default_rng(seed)
    pts = xyz if len(xyz) <= sample else xyz[rng.choice(len(xyz), sample, replace=False)]
    pts = pts.astype(np.float64)
    # Candidates from the lower half of the scan: the ground is below the objects on it.
    low = pts[pts[:, 2] <= np.quantile(pts[:, 2], 0.5)]
    min_c = np.cos(np.radians(max_tilt_deg))
    best, best_count = None, 0
    for _ in range(iterations):
        p0, p1, p2 = low[rng.choice(len(low), 3, replace=False)]
        n = np.cross(p1 - p0, p2 - p0)
        norm = np.linalg.norm(n)
        if norm < 1e-9:
            continue
        n = n / norm
        if n[2] < 0:
            n = -n
        if n[2] < min_c:
            continue
        d = -float(n @ p0)
        count = int((np.abs(pts @ n + d) < threshold).sum())
        if count > best_count:
            best, best_count = (n, d), count
    if best is None or best_count < 0.1 * len(pts):
        return None
    n, d = best
    inliers = pts[np.abs(pts @ n + d) < threshold]
    # least squares z = alpha x + beta y + gamma on the inliers
    A = np.c_[inliers[:, 0], inliers[:, 1], np.ones(len(inliers))]
    (alpha, beta, gamma), *_ = np.linalg.lstsq(A, inliers[:, 2], rcond=None)
    normal = np.array([-alpha, -beta, 1.0])
    scale = np.linalg.norm(normal)
    return GroundPlane(normal / scale, float(-gamma / scale))
