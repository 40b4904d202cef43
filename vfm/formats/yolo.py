"""YOLO datasets from a labeling run, in the layout Ultralytics trains on: detection boxes and
segmentation polygons, the images beside them, and data.yaml.

Layout (``<split>`` is train, val, test from ``--split``; everything is in train without it)::

    OUT/yolo/detect/images/<split>/<path>        the image (hard link, symlink or copy: yolo_images.py)
    OUT/yolo/detect/labels/<split>/<path>.txt    class cx cy w h            (normalized to 0..1)
    OUT/yolo/detect/data.yaml                    path (this folder), train, val, test?, nc, names
    OUT/yolo/segment/...                         the same, one line per mask: class x1 y1 x2 y2 ...

``<path>`` is the image's relative path (``dataset_name``: a folder named ``images`` becomes
``images_``); its label replaces the extension (``img.jpg`` -> ``img.txt``). ``class`` is the
0-based position in the category list (COCO id - 1). Images without objects get an empty file (a
background image for YOLO). Each mask becomes the polygon of its largest outer contour
(``cv2.findContours``, simple chain approximation); masks whose contour has fewer than 3 points are
left out of the segmentation files. A line that repeats an earlier one of the same image exactly
(same class and coordinates; duplicate detections) is written once, as Ultralytics keeps it once.
data.yaml's ``val`` is ``images/train`` when there is no val split, so
``ultralytics.data.utils.check_det_dataset`` accepts it as written. Each task folder is built aside
and swapped in whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from vfm.errors import require
from vfm.formats._atomic import atomic_dir, stem_path


def mask_polygon(mask: np.ndarray) -> np.ndarray | None:
    """Largest outer contour of an HxW bool mask as Kx2 float (x, y) pixels, or None (< 3 points)."""
    cv2 = require("cv2", "yolo")
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    best = max(contours, key=cv2.contourArea)
    pts = best.reshape(-1, 2).astype(np.float64)
    return pts if len(pts) >= 3 else None


def _data_yaml(root: Path, categories: list[str], splits: list[str]) -> str:
    lines = ["# written by vfm label; train with: yolo <detect|segment> train data=<this file>",
             f"path: {json.dumps(str(root))}", "train: images/train",
             f"val: images/{'val' if 'val' in splits else 'train'}"]
    lines += ["test: images/test"] if "test" in splits else []
    lines += [f"nc: {len(categories)}", "names:"]
    lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(categories)]
    return "\n".join(lines) + "\n"


def write_yolo(store, categories: list[str], out_dir: str | os.PathLike, source_root: str, *, segment: bool,
               fractions: dict[str, float] | None = None, images: str = "link") -> dict[str, int]:
    """Write OUT/yolo/detect (and OUT/yolo/segment when ``segment``); returns line and image counts.

    ``fractions`` is the parsed ``--split`` (None: everything in train); ``images`` is how the image
    files get into images/<split>/ (link, symlink, copy). ``source_root`` joined with a row's name is
    the image's file.
    """
    from vfm.formats.split import DEFAULT, split_by_video, split_of, split_unit
    from vfm.formats.yolo_images import ImagePlacer, dataset_name
    from vfm.results.rle import decode_rle

    if segment:
        require("cv2", "yolo")
    fractions = fractions or DEFAULT
    placer = ImagePlacer(images)
    by_video = split_by_video(store)
    class_of = {name: i for i, name in enumerate(categories)}
    counts = {"boxes": 0, "polygons": 0, **{f"images_{s}": 0 for s in fractions}}
    root = Path(out_dir).absolute() / "yolo"
    root.mkdir(parents=True, exist_ok=True)
    with atomic_dir(root / "detect") as det_dir:
        seg_ctx = atomic_dir(root / "segment") if segment else None
        seg_dir = seg_ctx.__enter__() if seg_ctx else None
        task_dirs = [d for d in (det_dir, seg_dir) if d is not None]
        for d in task_dirs:
            for split in fractions:
                (d / "images" / split).mkdir(parents=True)
                (d / "labels" / split).mkdir(parents=True)
        for _id, name, _s, w, h, result, _e in store.rows("done"):
            split = split_of(split_unit(name, by_video), fractions)
            rel = dataset_name(name)
            det_lines, seg_lines = [], []
            for ann in json.loads(result).get("annotations", []):
                cls = class_of.get(ann["category"], 0)
                x, y, bw, bh = ann["bbox"]
                det_lines.append(f"{cls} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}")
                if seg_dir is not None and "segmentation" in ann:
                    poly = mask_polygon(decode_rle(ann["segmentation"]))
                    if poly is not None:
                        coords = " ".join(f"{px / w:.6f} {py / h:.6f}" for px, py in poly)
                        seg_lines.append(f"{cls} {coords}")
            det_lines, seg_lines = list(dict.fromkeys(det_lines)), list(dict.fromkeys(seg_lines))  # no repeats
            for d in task_dirs:
                placer.place(Path(source_root) / name, d / "images" / split / rel)
            _write_lines(det_dir / "labels" / split / stem_path(rel, ".txt"), det_lines)
            counts["boxes"] += len(det_lines)
            counts[f"images_{split}"] += 1
            if seg_dir is not None:
                _write_lines(seg_dir / "labels" / split / stem_path(rel, ".txt"), seg_lines)
                counts["polygons"] += len(seg_lines)
        (det_dir / "data.yaml").write_text(_data_yaml(root / "detect", categories, list(fractions)))
        if seg_ctx is not None:
            (seg_dir / "data.yaml").write_text(_data_yaml(root / "segment", categories, list(fractions)))
            seg_ctx.__exit__(None, None, None)
    return counts


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def read_yolo_boxes(path: str | os.PathLike) -> list[tuple[int, float, float, float, float]]:
    """Parse a YOLO detection txt: ``[(class, cx, cy, w, h), ...]`` (normalized)."""
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts:
            out.append((int(parts[0]), *(float(v) for v in parts[1:5])))
    return out
