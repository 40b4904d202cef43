"""The bird's-eye view (BEV) picture of a scan, and the mapping between its pixels and the ground plane.

Pixel (row, col) covers x in [x_max - (row + 1) r, x_max - row r) and y in [y_max - (col + 1) r,
y_max - col r): forward (+x) is up and left (+y) is left, as seen from above, ``r`` the resolution
in metres per pixel. Defaults are SAM3D's (Waymo, vehicles within 30 m): x and y in [-30, 30] m,
z in [-3, 4] m (wide enough for KITTI's sensor at 1.73 m above the road and Waymo's frame at road
level), 0.1 m per pixel, so a 600 x 600 picture.

The three channels, each 0-255: red = the highest intensity in the cell (intensities above 1 are
taken as 0-255 values, as many PCD/PLY exporters write them), green = the height of the highest
point in the z range, blue = the density, log(1 + n) / log(64) capped at 1 (MV3D's). Empty cells
are black. SAM3D then dilates the sparse picture so it looks like a photo to SAM (``dilate`` steps
of a 3 x 3 maximum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfm.errors import PromptError

MAX_BEV_PIXELS = 16_000_000


@dataclass(frozen=True)
class BEVGrid:
    x_range: tuple[float, float] = (-30.0, 30.0)
    y_range: tuple[float, float] = (-30.0, 30.0)
    z_range: tuple[float, float] = (-3.0, 4.0)
    resolution: float = 0.1

    def __post_init__(self):
        for name, (lo, hi) in (("x", self.x_range), ("y", self.y_range), ("z", self.z_range)):
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise PromptError(f"BEV {name} range {lo:g},{hi:g} must be two finite numbers, the first smaller")
        if not (np.isfinite(self.resolution) and self.resolution > 0):
            raise PromptError(f"BEV resolution {self.resolution:g} must be a positive number of metres per pixel")
        if self.height * self.width > MAX_BEV_PIXELS:
            raise PromptError(f"a {self.width}x{self.height} BEV picture is too large (over {MAX_BEV_PIXELS:,} pixels); "
                              "use a coarser --resolution or a smaller --range")

    @property
    def height(self) -> int:
        return int(round((self.x_range[1] - self.x_range[0]) / self.resolution))

    @property
    def width(self) -> int:
        return int(round((self.y_range[1] - self.y_range[0]) / self.resolution))

    def inside(self, xyz: np.ndarray) -> np.ndarray:
        """Boolean mask of the points within the x, y and z ranges."""
        x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        return ((x >= self.x_range[0]) & (x < self.x_range[1]) & (y >= self.y_range[0]) & (y < self.y_range[1])
                & (z >= self.z_range[0]) & (z < self.z_range[1]))

    def pixels(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of points inside the grid (callers pass points that :meth:`inside` kept)."""
        row = np.floor((self.x_range[1] - xy[:, 0]) / self.resolution).astype(np.int64)
        col = np.floor((self.y_range[1] - xy[:, 1]) / self.resolution).astype(np.int64)
        return np.clip(row, 0, self.height - 1), np.clip(col, 0, self.width - 1)

    def to_metres(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Pixel coordinates (continuous; a pixel's centre is +0.5) -> N x 2 (x, y)."""
        return np.stack([self.x_range[1] - np.asarray(rows) * self.resolution,
                         self.y_range[1] - np.asarray(cols) * self.resolution], axis=1)

    def render(self, xyz: np.ndarray, intensity: np.ndarray | None, dilate: int = 1) -> np.ndarray:
        """H x W x 3 uint8 picture of the points (already cropped to the grid)."""
        h, w = self.height, self.width
        img = np.zeros((h, w, 3), np.float32)
        if len(xyz):
            row, col = self.pixels(xyz[:, :2])
            flat = row * w + col
            if intensity is not None and len(intensity):
                inten = np.asarray(intensity, np.float32)
                inten = inten / 255.0 if np.nanmax(inten) > 1.0 else inten
                red = np.zeros(h * w, np.float32)
                np.maximum.at(red, flat, np.clip(inten, 0, 1))
                img[..., 0] = red.reshape(h, w)
            green = np.zeros(h * w, np.float32)
            zn = (xyz[:, 2] - self.z_range[0]) / (self.z_range[1] - self.z_range[0])
            np.maximum.at(green, flat, np.clip(zn, 1e-3, 1))  # a point at the floor still marks its cell
            count = np.bincount(flat, minlength=h * w).astype(np.float32)
            img[..., 1] = green.reshape(h, w)
            img[..., 2] = np.minimum(1.0, np.log1p(count) / np.log(64.0)).reshape(h, w)
        out = (img * 255).round().astype(np.uint8)
        if dilate > 0:
            from PIL import Image, ImageFilter

            pil = Image.fromarray(out)
            for _ in range(dilate):
                pil = pil.filter(ImageFilter.MaxFilter(3))
            out = np.asarray(pil).copy()
        return out
