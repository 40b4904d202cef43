"""Shared bench helpers: a SAM ViT-B sized random checkpoint on disk and timing statistics."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import numpy as np


def vit_b_checkpoint(cache_dir: str | None = None) -> Path:
    """Save (once) a SAM ViT-B sized SamModel with realistic random init (std 0.02), return its dir."""
    from vfm.testing.tiny_models import build_sam

    root = Path(cache_dir or os.environ.get("VFM_BENCH_DIR", Path(tempfile.gettempdir()) / "vfm-bench"))
    d = root / "sam-vit-b-random"
    if not (d / "model.safetensors").exists():
        build_sam(d, seed=0, vit_b=True)
    return d


def bench_image(size: int = 1024, seed: int = 0) -> np.ndarray:
    """A deterministic natural-ish test image: smooth gradients and a few solid shapes."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([xx * 255 // size, yy * 255 // size, (xx + yy) * 127 // size], -1)
    for _ in range(12):
        cx, cy, r = rng.randint(0, size, 2).tolist() + [rng.randint(size // 20, size // 5)]
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.randint(0, 255, 3)
    return img.astype(np.uint8)


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def median(values) -> float:
    return float(statistics.median(values))
