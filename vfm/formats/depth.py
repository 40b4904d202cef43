"""Depth map files: a 16-bit PNG, a float32 .npy and a colourised preview.

16-bit PNG (``depth.png``, single channel, uint16):

* metric maps: ``round(metres * 256)`` (the KITTI depth convention; 1/256 m steps up to 255.99 m,
  larger values clipped to 65535); 0 means no value (NaN or not positive).
* relative maps: ``round((v - min) / (max - min) * 65535)``, min and max of the map, which are
  written into result.json (``png_min``, ``png_max``) so the values can be recovered to 1/65535 of
  their range. A constant map is all 0.

``depth.npy`` holds the float32 values exactly. The preview (``depth_color.png``, 8-bit RGB) maps
near to warm and far to cool colours with matplotlib's ``Spectral`` colour map (as the Depth
Anything demos do), stretched between the 2nd and 98th percentile of the map.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vfm.results.depth import DepthMap

METRIC_PNG_SCALE = 256.0


def depth_to_png16(depth: DepthMap) -> tuple[np.ndarray, dict[str, Any]]:
    """(HxW uint16, how to read it back) for ``depth``."""
    v = depth.values.astype(np.float64)
    if depth.kind == "metric":
        valid = np.isfinite(v) & (v > 0)
        out = np.zeros(v.shape, np.uint16)
        out[valid] = np.clip(np.rint(v[valid] * METRIC_PNG_SCALE), 1, 65535).astype(np.uint16)
        return out, {"png_scale": METRIC_PNG_SCALE, "png_meaning": "metres = value / 256; 0 = no value"}
    finite = np.isfinite(v)
    lo, hi = (float(v[finite].min()), float(v[finite].max())) if finite.any() else (0.0, 0.0)
    span = hi - lo
    out = np.zeros(v.shape, np.uint16)
    if span > 0:
        out[finite] = np.rint((v[finite] - lo) / span * 65535).astype(np.uint16)
    return out, {"png_min": lo, "png_max": hi, "png_meaning": "value = png_min + png / 65535 * (png_max - png_min)"}


def colorize(depth: DepthMap) -> np.ndarray:
    """HxWx3 uint8 preview: near warm, far cool (relative maps are inverse depth, so flipped)."""
    from vfm.errors import require

    require("matplotlib", "depth")
    from matplotlib import colormaps as cm

    v = depth.values.astype(np.float64)
    nearness = -v if depth.kind == "metric" else v
    finite = np.isfinite(nearness)
    if not finite.any():
        return np.zeros(v.shape + (3,), np.uint8)
    lo, hi = np.percentile(nearness[finite], [2, 98])
    t = np.clip((nearness - lo) / (hi - lo), 0, 1) if hi > lo else np.full(v.shape, 0.5)
    t[~finite] = 0
    rgba = cm["Spectral_r"](t)  # high nearness -> red
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def write_depth(depth: DepthMap, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write depth.png, depth.npy and depth_color.png into ``out_dir``; returns the PNG's reading."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    png, reading = depth_to_png16(depth)
    Image.fromarray(png).save(d / "depth.png")
    tmp = d / "depth.npy.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, depth.values.astype(np.float32))
    tmp.replace(d / "depth.npy")
    Image.fromarray(colorize(depth)).save(d / "depth_color.png")
    return {**reading, "files": ["depth.png", "depth.npy", "depth_color.png"]}
