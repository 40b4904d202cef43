"""BEV and 3D average precision of KITTI-format 3D boxes (``vfm eval --task bev``).

Ground truth and predictions are KITTI label files (camera frame), paired by name: ``GT_DIR/000123.txt``
with ``PRED_DIR/000123.txt`` (a missing prediction file is a frame with no detection), or two files.
For every class that has ground truth (``DontCare`` and classes absent from the ground truth left
out), detections of that class over all frames are ranked by score; each is a true positive when
its best-overlapping unmatched ground-truth box of the frame has IoU >= the threshold, else a false
positive. AP is KITTI's 40-point interpolated average precision (R40: the mean over recall
1/40, 2/40, ..., 1 of the best precision at that recall or above). IoU is that of the footprints on
the ground (x-z of the camera frame) for BEV, of the volumes for 3D. KITTI's easy / moderate / hard
split by 2D box height, occlusion and truncation is not made: every ground-truth box counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfm.formats.kitti import LabelError, footprint_xz, read_labels
from vfm.lidar.boxes import iou_3d, iou_bev

THRESHOLDS = (0.5, 0.7)


@dataclass
class BevEvalResult:
    frames: int
    per_class: dict = field(default_factory=dict)  # class -> {"gt", "detections", "bev": {thr: ap}, "3d": {thr: ap}}
    unmatched_predictions: list[str] = field(default_factory=list)  # prediction files with no ground truth

    def to_json(self) -> dict:
        return {"frames": self.frames, "method": "R40", "classes": self.per_class,
                "unmatched_prediction_files": self.unmatched_predictions}


def _pairs(gt: Path, pred: Path) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    if gt.is_file():
        if not pred.is_file():
            raise LabelError(f"--gt is a file, so --pred must be one too; '{pred}' is not a file")
        return [(gt.stem, gt, pred)], []
    if not gt.is_dir():
        raise LabelError(f"ground truth '{gt}' does not exist")
    if not pred.is_dir():
        raise LabelError(f"predictions '{pred}' is not a folder of KITTI label files (as vfm lidar3d --out writes)")
    gts = sorted(p for p in gt.glob("*.txt"))
    if not gts:
        raise LabelError(f"ground truth folder '{gt}' holds no .txt label files")
    preds = {p.stem: p for p in pred.glob("*.txt")}
    names = {p.stem for p in gts}
    return [(p.stem, p, preds.get(p.stem)) for p in gts], sorted(n for n in preds if n not in names)


def _z(recs) -> np.ndarray:
    """N x 2 vertical extent, as (low, high) along -y (camera y points down)."""
    return np.array([[-r["location"][1], -r["location"][1] + r["dimensions"][0]] for r in recs]).reshape(-1, 2)


def average_precision_r40(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.asarray(tp, float)[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall, precision = ctp / n_gt, ctp / (ctp + cfp)
    # best precision at each recall or above
    best = np.maximum.accumulate(precision[::-1])[::-1]
    ap = 0.0
    for r in np.arange(1, 41) / 40:
        idx = np.flatnonzero(recall >= r - 1e-12)
        ap += best[idx[0]] if len(idx) else 0.0
    return float(ap / 40)


def evaluate_bev(gt: str | os.PathLike, pred: str | os.PathLike, thresholds=THRESHOLDS) -> BevEvalResult:
    pairs, unmatched = _pairs(Path(gt), Path(pred))
    frames = [(name, read_labels(g), read_labels(p) if p is not None else []) for name, g, p in pairs]
    classes = sorted({r["type"] for _, g, _ in frames for r in g if r["type"] != "DontCare"})
    result = BevEvalResult(frames=len(frames), unmatched_predictions=unmatched)
    for cls in classes:
        entry = {"gt": 0, "detections": 0, "bev": {}, "3d": {}}
        per_frame = []
        for _, g, p in frames:
            gs = [r for r in g if r["type"] == cls]
            ps = [r for r in p if r["type"] == cls]
            entry["gt"] += len(gs)
            entry["detections"] += len(ps)
            if gs and ps:
                gc, pc = np.array([footprint_xz(r) for r in gs]), np.array([footprint_xz(r) for r in ps])
                ious = {"bev": iou_bev(pc, gc), "3d": iou_3d(pc, _z(ps), gc, _z(gs))}
            else:
                ious = {"bev": np.zeros((len(ps), len(gs))), "3d": np.zeros((len(ps), len(gs)))}
            per_frame.append((np.array([r["score"] for r in ps]), ious))
        for kind in ("bev", "3d"):
            for thr in thresholds:
                tps, scores = [], []
                for sc, ious in per_frame:
                    iou = ious[kind]
                    taken = np.zeros(iou.shape[1], bool)
                    for i in np.argsort(-sc, kind="stable"):
                        cand = np.where(taken, -1.0, iou[i]) if iou.shape[1] else np.zeros(0)
                        j = int(np.argmax(cand)) if len(cand) else -1
                        hit = j >= 0 and cand[j] >= thr
                        if hit:
                            taken[j] = True
                        tps.append(hit)
                        scores.append(sc[i])
                entry[kind][f"{thr:g}"] = round(average_precision_r40(np.array(tps), np.array(scores), entry["gt"]), 6)
        result.per_class[cls] = entry
    return result
