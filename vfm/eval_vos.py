"""Video object segmentation: DAVIS J (region IoU), F (boundary F-measure) and J&F.

As the DAVIS 2017 semi-supervised benchmark defines them:

- J: intersection over union of the predicted and ground-truth masks of an object on a frame; 1
  when both are empty.
- F: boundary F-measure. Boundaries are the one-pixel contours of each mask; a boundary pixel is
  matched when the other boundary lies within ``ceil(0.008 * image diagonal)`` pixels (a disk);
  precision and recall of the matches give F = 2PR / (P + R) (0 when both are 0; 1 when neither mask
  has a boundary; P = 1, R = 0 for an empty prediction of a present object and the reverse).
- Per object: the mean over the sequence's frames *without its first and last* (the first is the
  given mask; DAVIS leaves both out), the recall (fraction of frames above 0.5) and the decay (mean of
  the first quarter of the frames minus that of the last quarter, DAVIS's quarter edges).
- J&F: the mean over all objects of all sequences of J, the same for F, and their average.

Folders are DAVIS-style: indexed PNGs per frame (pixel value = object id, 0 background, 255 void
and never an object), either one sequence (PNGs directly in the folder, or in its ``masks/``
subfolder as `vfm track --out` writes) or one subfolder per sequence. Prediction frames are paired
with ground-truth frames by file name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfm.errors import PromptError, require

BOUND_TH = 0.008


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """DAVIS J of two HxW boolean masks."""
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary mask: pixels that differ from their right, lower or lower-right
    neighbour (the last row and column compare along the edge only), as DAVIS's seg2bmap at full size."""
    m = mask.astype(bool)
    right = np.zeros_like(m)
    down = np.zeros_like(m)
    diag = np.zeros_like(m)
    right[:, :-1] = m[:, 1:]
    down[:-1, :] = m[1:, :]
    diag[:-1, :-1] = m[1:, 1:]
    b = (m ^ right) | (m ^ down) | (m ^ diag)
    b[-1, :] = m[-1, :] ^ right[-1, :]
    b[:, -1] = m[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def _dilate(b: np.ndarray, radius: int) -> np.ndarray:
    """Dilation by a disk of ``radius`` (the pixels within that Euclidean distance of ``b``)."""
    if not b.any():
        return b.copy()
    ndimage = require("scipy.ndimage", "video")
    return ndimage.distance_transform_edt(~b) <= radius


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """DAVIS F of two HxW boolean masks."""
    h, w = gt.shape
    radius = int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * math.hypot(h, w)))
    pb, gb = boundary_map(pred), boundary_map(gt)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0:
        precision, recall = 1.0, 0.0
    elif n_g == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = float((pb & _dilate(gb, radius)).sum() / n_p)
        recall = float((gb & _dilate(pb, radius)).sum() / n_g)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": float("nan"), "recall": float("nan"), "decay": float("nan")}
    # DAVIS's quarters: edges at round(linspace(1, n, 5)) - 1, each quarter including its end edge
    edges = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
    first, last = values[edges[0]: edges[1] + 1], values[edges[3]: edges[4] + 1]
    return {"mean": float(values.mean()), "recall": float((values > 0.5).mean()),
            "decay": float(first.mean() - last.mean())}


@dataclass
class VosResult:
    """Per object (``"sequence/id"``) J and F stats, and the means."""

    objects: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    frames: int = 0

    @property
    def j_mean(self) -> float:
        return float(np.mean([o["J"]["mean"] for o in self.objects.values()])) if self.objects else float("nan")

    @property
    def f_mean(self) -> float:
        return float(np.mean([o["F"]["mean"] for o in self.objects.values()])) if self.objects else float("nan")

    @property
    def jf(self) -> float:
        return (self.j_mean + self.f_mean) / 2

    def to_dict(self) -> dict:
        def mean_of(metric, stat):
            return float(np.mean([o[metric][stat] for o in self.objects.values()])) if self.objects else float("nan")

        return {"J&F": self.jf, "J": {s: mean_of("J", s) for s in ("mean", "recall", "decay")},
                "F": {s: mean_of("F", s) for s in ("mean", "recall", "decay")}, "frames": self.frames,
                "objects": self.objects}


def _pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def _sequences(root: Path, what: str) -> dict[str, Path]:
    if not root.is_dir():
        raise PromptError(f"{what} '{root}' is not a folder of DAVIS-style PNG masks")
    if _pngs(root):
        return {"": root}
    if (root / "masks").is_dir() and _pngs(root / "masks"):
        return {"": root / "masks"}
    seqs = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if _pngs(sub):
            seqs[sub.name] = sub
        elif (sub / "masks").is_dir() and _pngs(sub / "masks"):
            seqs[sub.name] = sub / "masks"
    if not seqs:
        raise PromptError(f"{what} '{root}' has no PNG masks (per frame, or one subfolder per sequence)")
    return seqs


def _read_ids(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I", "I;16"):
                raise PromptError(f"'{path}' is a {im.mode} PNG; DAVIS masks are indexed (P) or grayscale PNGs of object ids")
            return np.asarray(im).astype(np.int64)
    except OSError as exc:
        raise PromptError(f"'{path}' cannot be read as a PNG mask ({exc})") from None


def evaluate_vos(gt_dir: str | Path, pred_dir: str | Path, *, bound_th: float = BOUND_TH,
                 skip_first_last: bool = True) -> VosResult:
    """J, F and J&F of predicted DAVIS-style masks against ground truth."""
    gts = _sequences(Path(gt_dir), "--gt")
    preds = _sequences(Path(pred_dir), "--pred")
    if set(gts) == {""} and set(preds) != {""} and len(preds) == 1:
        preds = {"": next(iter(preds.values()))}
    result = VosResult()
    for seq, gdir in gts.items():
        if seq not in preds:
            raise PromptError(f"--pred '{pred_dir}' has no sequence '{seq}' (the ground truth has)")
        pdir = preds[seq]
        frames = _pngs(gdir)
        if skip_first_last:
            frames = frames[1:-1] if len(frames) > 2 else []
        if not frames:
            raise PromptError(f"sequence '{seq or gdir}' has fewer than 3 annotated frames; "
                              "DAVIS leaves out the first and last, so nothing is left to score")
        first = _read_ids(_pngs(gdir)[0])
        objects = sorted(int(v) for v in np.unique(first) if 0 < v < 255)
        if not objects:
            raise PromptError(f"the first ground-truth frame of '{seq or gdir}' has no objects")
        js = {o: [] for o in objects}
        fs = {o: [] for o in objects}
        for gpath in frames:
            ppath = pdir / gpath.name
            if not ppath.exists():
                raise PromptError(f"prediction '{ppath}' is missing (ground truth has '{gpath.name}')")
            g, p = _read_ids(gpath), _read_ids(ppath)
            if g.shape != p.shape:
                raise PromptError(f"'{ppath}' is {p.shape[1]}x{p.shape[0]}, the ground truth is {g.shape[1]}x{g.shape[0]}")
            for o in objects:
                gm, pm = g == o, p == o
                js[o].append(region_j(pm, gm))
                fs[o].append(boundary_f(pm, gm, bound_th))
            result.frames += 1
        for o in objects:
            key = f"{seq}/{o}" if seq else str(o)
            result.objects[key] = {"J": _stats(np.array(js[o])), "F": _stats(np.array(fs[o]))}
    return result
