"""YOLO datasets from a labeling run: detection boxes and segmentation polygons, plus data.yaml.

Layout (one .txt per image, mirroring SOURCE's relative paths, ``img.jpg`` -> ``img.txt``)::

    OUT/yolo/detect/labels/<path>.txt    class cx cy w h            (normalized to 0..1)
    OUT/yolo/detect/data.yaml            path (SOURCE), nc, names
    OUT/yolo/segment/labels/<path>.txt   class x1 y1 x2 y2 ...      (normalized polygon; masks only)
    OUT/yolo/segment/data.yaml

``class`` is the 0-based position in the category list (COCO id - 1). Images without objects get an
empty file (a background image for YOLO). Each mask becomes the polygon of its largest outer
contour (``cv2.findContours``, simple chain approximation); masks whose contour has fewer than 3
points are left out of the segmentation files. Each folder is built aside and swapped in whole.
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


def _data_yaml(source_root: str, categories: list[str]) -> str:
    lines = [f"# written by vfm label; labels/ mirrors the image paths under 'path'",
             f"path: {json.dumps(source_root)}", "train: .", "val: .", f"nc: {len(categories)}", "names:"]
    lines += [f"  {i}: {json.dumps(name)}" for i, name in enumerate(categories)]
    return "\n".join(lines) + "\n"


def write_yolo(store, categories: list[str], out_dir: str | os.PathLike, source_root: str, *, segment: bool) -> dict[str, int]:
    """Write OUT/yolo/detect (and OUT/yolo/segment when ``segment``); returns line counts."""
    from vfm.results.rle import decode_rle

    if segment:
        require("cv2", "yolo")
    class_of = {name: i for i, name in enumerate(categories)}
    counts = {"boxes": 0, "polygons": 0}
    root = Path(out_dir) / "yolo"
    root.mkdir(parents=True, exist_ok=True)
    with atomic_dir(root / "detect") as det_dir:
        seg_ctx = atomic_dir(root / "segment") if segment else None
        seg_dir = seg_ctx.__enter__() if seg_ctx else None
        for _id, name, _s, w, h, result, _e in store.rows("done"):
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
            _write_lines(det_dir / "labels" / stem_path(name, ".txt"), det_lines)
            counts["boxes"] += len(det_lines)
            if seg_dir is not None:
                _write_lines(seg_dir / "labels" / stem_path(name, ".txt"), seg_lines)
                counts["polygons"] += len(seg_lines)
        (det_dir / "data.yaml").write_text(_data_yaml(source_root, categories))
        if seg_ctx is not None:
            (seg_dir / "data.yaml").write_text(_data_yaml(source_root, categories))
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
