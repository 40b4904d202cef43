"""Depth evaluation (``vfm eval --task depth``): AbsRel, RMSE and δ accuracies of predicted maps
against ground-truth depth in metres, the definitions of the KITTI / NYU benchmarks.

    res = evaluate_depth("gt/", "pred/", align="auto")   # DepthEvalResult

Files are paired by their path relative to each folder without the extension:

* GT: ``<name>.png`` (16-bit, metres x ``gt_scale``, 256 for KITTI, 1000 for NYU / millimetres;
  0 = no ground truth) or ``<name>.npy`` (metres; 0, negative or NaN = none).
* predictions: what ``vfm depth --out`` writes (``<name>/depth.npy`` with its ``result.json``, which
  says relative or metric), or ``<name>.npy`` / ``<name>.png`` (metric unless ``pred_kind`` says
  otherwise; PNGs are read with ``gt_scale``).

Per image, over the pixels with ground truth in ``[min_depth, max_depth]``:

* ``align``: ``none`` (metric maps), ``median`` (scale the prediction by median(gt) / median(pred):
  depth known up to scale), ``lstsq`` (relative inverse depth, as Depth Anything / MiDaS are
  evaluated: the scale s and shift t minimising sum((s * pred + t - 1 / gt)^2) are fitted, and
  depth = 1 / (s * pred + t)); ``auto`` is ``lstsq`` for relative maps and ``none`` for metric ones.
* the prediction is clipped to ``[min_depth, max_depth]``, then
  ``abs_rel = mean(|p - g| / g)``, ``rmse = sqrt(mean((p - g)^2))``,
  ``delta1..3 = mean(max(p / g, g / p) < 1.25^k)``.

Reported values are the means over images (each image counts once, whatever its number of pixels).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfm.errors import VfmError

ALIGNS = ("auto", "none", "median", "lstsq")
METRICS = ("abs_rel", "rmse", "delta1", "delta2", "delta3")


class DepthEvalError(VfmError):
    """Depth maps that cannot be compared."""


@dataclass
class DepthEvalResult:
    metrics: dict[str, float]
    images: int
    align: str
    per_image: dict[str, dict[str, float]]


def _files(root: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith("."):
            rel = path.relative_to(root).with_suffix("").as_posix()
            if path.name in ("depth.npy", "depth.png") and path.parent != root:
                rel = path.parent.relative_to(root).as_posix()  # vfm depth --out: <name>/depth.npy
                if path.suffix == ".png" and (path.parent / "depth.npy").is_file():
                    continue  # the exact .npy is preferred over its 16-bit PNG
            elif path.name == "depth_color.png":
                continue
            out.setdefault(rel, path)
    return out


def read_depth(path: Path, scale: float) -> np.ndarray:
    """Metres (or a relative map) as float64; NaN where there is no value."""
    try:
        if path.suffix.lower() == ".npy":
            v = np.load(path, allow_pickle=False).astype(np.float64)
        else:
            from PIL import Image

            with Image.open(path) as im:
                raw = np.asarray(im)
            if raw.ndim != 2:
                raise DepthEvalError(f"'{path}' is not a single-channel depth PNG (mode {im.mode}); save depth as 16-bit grayscale")
            v = raw.astype(np.float64) / scale
            v[raw == 0] = np.nan
    except DepthEvalError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise DepthEvalError(f"'{path}' is not a readable depth map ({str(exc).splitlines()[0][:120]})") from None
    if v.ndim != 2:
        raise DepthEvalError(f"'{path}' holds an array of shape {v.shape}; a depth map is HxW")
    return v


def _kind(path: Path, default: str) -> str:
    result = path.parent / "result.json"
    if path.name == "depth.npy" and result.is_file():
        try:
            return json.loads(result.read_text())["depth"]["kind"]
        except (ValueError, KeyError, TypeError):
            pass
    return default


def align_prediction(pred: np.ndarray, gt: np.ndarray, align: str) -> np.ndarray:
    """``pred`` aligned to ``gt`` on the pixels both have (see the module docstring)."""
    if align == "none":
        return pred
    if align == "median":
        return pred * (np.median(gt) / np.median(pred))
    # lstsq on inverse depth
    a = np.stack([pred, np.ones_like(pred)], axis=1)
    (s, t), *_ = np.linalg.lstsq(a, 1.0 / gt, rcond=None)
    return 1.0 / np.maximum(s * pred + t, 1e-8)


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    ratio = np.maximum(pred / gt, gt / pred)
    return {"abs_rel": float(np.mean(np.abs(pred - gt) / gt)), "rmse": float(np.sqrt(np.mean((pred - gt) ** 2))),
            "delta1": float(np.mean(ratio < 1.25)), "delta2": float(np.mean(ratio < 1.25**2)),
            "delta3": float(np.mean(ratio < 1.25**3))}


def evaluate_depth(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, *, align: str = "auto",
                   gt_scale: float = 256.0, min_depth: float = 1e-3, max_depth: float | None = None,
                   pred_kind: str = "metric") -> DepthEvalResult:
    if align not in ALIGNS:
        raise DepthEvalError(f"--align must be one of {', '.join(ALIGNS)}, got '{align}'")
    if not gt_scale > 0 or not min_depth > 0 or (max_depth is not None and not max_depth > min_depth):
        raise DepthEvalError("--gt-scale and --min-depth must be positive and --max-depth above --min-depth")
    gt_root, pred_root = Path(gt_dir), Path(pred_dir)
    for root, what in ((gt_root, "--gt"), (pred_root, "--pred")):
        if not root.is_dir():
            raise DepthEvalError(f"{what} '{root}' is not a folder of depth maps")
    gts = _files(gt_root, (".png", ".npy"))
    preds = _files(pred_root, (".npy", ".png"))
    shared = sorted(set(gts) & set(preds))
    if not shared:
        raise DepthEvalError(f"no depth map in --pred '{pred_root}' has a ground truth in --gt '{gt_root}' of the same name "
                             f"({len(preds)} predictions, {len(gts)} ground truths)")
    hi = np.inf if max_depth is None else max_depth
    per_image, used_align = {}, set()
    for name in shared:
        gt = read_depth(gts[name], gt_scale)
        pred = read_depth(preds[name], gt_scale)
        if pred.shape != gt.shape:
            raise DepthEvalError(f"'{name}': the prediction is {pred.shape[1]}x{pred.shape[0]} but the ground truth is "
                                 f"{gt.shape[1]}x{gt.shape[0]}; predict at the ground truth's resolution")
        valid = np.isfinite(gt) & (gt >= min_depth) & (gt <= hi) & np.isfinite(pred)
        if not valid.any():
            continue
        mode = align
        if align == "auto":
            mode = "lstsq" if _kind(preds[name], pred_kind) == "relative" else "none"
        used_align.add(mode)
        p = align_prediction(pred[valid], gt[valid], mode)
        per_image[name] = depth_metrics(np.clip(p, min_depth, hi), gt[valid])
    if not per_image:
        raise DepthEvalError(f"none of the {len(shared)} shared images has ground truth in [{min_depth:g}, {hi:g}] m")
    metrics = {k: float(np.mean([m[k] for m in per_image.values()])) for k in METRICS}
    return DepthEvalResult(metrics, len(per_image), "/".join(sorted(used_align)), per_image)
