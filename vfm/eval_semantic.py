"""Semantic segmentation evaluation (``vfm eval --task semantic``): mIoU, pixel accuracy and per-class
IoU, as the ADE20K and Cityscapes benchmarks define them.

    res = evaluate_semantic("gt/", "pred/", "classes.txt")

* ``classes``: a file with one class name per line; line i (0-based) is class i, the value of its
  pixels in the ground-truth PNGs.
* GT: label PNGs (8-bit palette/grayscale or 16-bit), the class index per pixel; ``ignore_index``
  (255) pixels are left out. Predictions: what ``vfm semantic --out`` (``<name>/labels.png``) or
  ``vfm label --format semantic`` (``semantic/<name>.png``) wrote, or any label PNGs, paired with
  the GT by their path without the extension. A ``classes.txt`` beside the predictions (both vfm
  outputs write one) maps prediction indices to GT classes by name (case-insensitive); prediction
  classes the GT list does not have count as wrong wherever they are.
* One confusion matrix over all pixels of all images; per class
  ``IoU = TP / (TP + FP + FN)``; classes with no pixel in the GT and none predicted are left out of
  the mean (their IoU is reported as null); ``pixel_accuracy = sum(TP) / valid pixels``;
  ``mean_accuracy`` is the mean over GT-present classes of TP / (TP + FN).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfm.errors import VfmError


class SemanticEvalError(VfmError):
    """Label maps that cannot be compared."""


@dataclass
class SemanticEvalResult:
    miou: float
    pixel_accuracy: float
    mean_accuracy: float
    per_class_iou: dict[str, float | None]
    images: int


def _read_classes(path: Path) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise SemanticEvalError(f"class list '{path}' cannot be read ({exc.__class__.__name__}); give a text file, "
                                "one class name per line") from None
    while names and not names[-1]:
        names.pop()
    if not names:
        raise SemanticEvalError(f"class list '{path}' is empty; give one class name per line (line 1 is class 0)")
    return names


def _maps(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.png")):
        if path.name.startswith(".") or path.name in ("overlay.png", "panoptic.png", "depth.png", "depth_color.png"):
            continue
        rel = path.parent.relative_to(root).as_posix() if path.name == "labels.png" and path.parent != root \
            else path.relative_to(root).with_suffix("").as_posix()
        out.setdefault(rel, path)
    return out


def _read(path: Path) -> np.ndarray:
    from vfm.formats.semantic import read_label_map

    try:
        return read_label_map(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise SemanticEvalError(f"'{path}' is not a readable label map ({str(exc).splitlines()[0][:120]})") from None


def evaluate_semantic(gt_dir: str | os.PathLike, pred_dir: str | os.PathLike, classes: str | os.PathLike,
                      ignore_index: int = 255) -> SemanticEvalResult:
    gt_root, pred_root = Path(gt_dir), Path(pred_dir)
    for root, what in ((gt_root, "--gt"), (pred_root, "--pred")):
        if not root.is_dir():
            raise SemanticEvalError(f"{what} '{root}' is not a folder of label PNGs")
    names = _read_classes(Path(classes))
    c = len(names)
    remap = None
    pred_classes = next(iter(sorted(pred_root.rglob("classes.txt"))), None)
    if pred_classes is not None:
        pred_names = _read_classes(pred_classes)
        if [n.lower() for n in pred_names] != [n.lower() for n in names]:
            index = {n.lower(): i for i, n in enumerate(names)}
            remap = np.array([index.get(n.lower(), c) for n in pred_names] + [c], dtype=np.int64)  # c: "not a GT class"
    gts, preds = _maps(gt_root), _maps(pred_root)
    shared = sorted(set(gts) & set(preds))
    if not shared:
        raise SemanticEvalError(f"no label map in --pred '{pred_root}' has a ground truth in --gt '{gt_root}' of the same "
                                f"name ({len(preds)} predictions, {len(gts)} ground truths)")
    confusion = np.zeros((c, c + 1), dtype=np.int64)  # rows: GT class, columns: predicted class (+ "other")
    for name in shared:
        gt, pred = _read(gts[name]), _read(preds[name])
        if gt.shape != pred.shape:
            raise SemanticEvalError(f"'{name}': the prediction is {pred.shape[1]}x{pred.shape[0]} but the ground truth is "
                                    f"{gt.shape[1]}x{gt.shape[0]}; label maps must have the image's size")
        valid = gt != ignore_index
        bad = np.unique(gt[valid & (gt >= c)])
        if bad.size:
            raise SemanticEvalError(f"'{gts[name]}' has class value {int(bad[0])}, but the class list has {c} classes "
                                    f"(0..{c - 1}, {ignore_index} = ignore)")
        p = pred[valid]
        p = remap[np.clip(p, 0, len(remap) - 1)] if remap is not None else np.where((p >= 0) & (p < c), p, c)
        confusion += np.bincount(gt[valid] * (c + 1) + p, minlength=c * (c + 1)).reshape(c, c + 1)
    tp = np.diag(confusion[:, :c]).astype(np.float64)
    gt_count = confusion.sum(axis=1).astype(np.float64)
    pred_count = confusion[:, :c].sum(axis=0).astype(np.float64)
    union = gt_count + pred_count - tp
    iou = {n: (float(tp[i] / union[i]) if union[i] > 0 else None) for i, n in enumerate(names)}
    present = [v for v in iou.values() if v is not None]
    if not present:
        raise SemanticEvalError("no valid pixel in the shared images (all ground truth is the ignore index?)")
    valid_pixels = gt_count.sum()
    acc = [tp[i] / gt_count[i] for i in range(c) if gt_count[i] > 0]
    return SemanticEvalResult(miou=float(np.mean(present)), pixel_accuracy=float(tp.sum() / valid_pixels),
                              mean_accuracy=float(np.mean(acc)), per_class_iou=iou, images=len(shared))
