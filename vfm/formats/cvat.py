"""CVAT for images 1.1 XML: one file for the whole run, what CVAT's "Upload annotations" reads.

    OUT/cvat.xml   <annotations><version>1.1</version><meta><task> name, size, labels </task></meta>
                   <image id name width height> <box|polygon|mask label source="auto" .../> </image>

Each object with a mask is a ``<mask>``: CVAT's RLE of the mask inside its tight box (``left``,
``top``, ``width``, ``height``): run lengths over that box in row-major order, the first run being
background (0 pixels when the first pixel is set). Objects without a mask are ``<box>`` (``xtl ytl
xbr ybr``, pixel-edge coordinates). ``--cvat-shapes polygon`` writes masks as ``<polygon>`` (the
largest outer contour, ``points="x,y;x,y;..."``) instead. ``source="auto"`` marks the model's
objects; the score is an ``<attribute name="score">`` when the label declares it (it does).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from vfm.formats._atomic import atomic_file
from vfm.formats.shapes import image_shapes


def mask_rle(mask: np.ndarray) -> tuple[list[int], tuple[int, int, int, int]]:
    """CVAT RLE (runs starting with background) of ``mask`` inside its tight box, and (left, top, width, height)."""
    ys, xs = np.nonzero(mask)
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    crop = mask[top:bottom + 1, left:right + 1].ravel().astype(np.int8)
    change = np.flatnonzero(np.diff(crop)) + 1
    bounds = np.r_[0, change, crop.size]
    runs = np.diff(bounds).tolist()
    if crop[0]:
        runs = [0] + runs
    return runs, (left, top, right - left + 1, bottom - top + 1)


def mask_from_rle(runs: list[int], left: int, top: int, width: int, height: int, image_wh: tuple[int, int]) -> np.ndarray:
    flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool)
    if flat.size != width * height:
        raise ValueError(f"CVAT RLE covers {flat.size} pixels, its box {width}x{height}")
    out = np.zeros((image_wh[1], image_wh[0]), bool)
    out[top:top + height, left:left + width] = flat.reshape(height, width)
    return out


def write_cvat(store, categories: list[str], path: str | os.PathLike, *, shapes: str = "mask",
               task_name: str = "vfm label") -> int:
    rows = list(store.rows("done"))
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = task_name
    ET.SubElement(task, "size").text = str(len(rows))
    labels = ET.SubElement(task, "labels")
    for name in categories:
        lab = ET.SubElement(labels, "label")
        ET.SubElement(lab, "name").text = name
        attrs = ET.SubElement(ET.SubElement(lab, "attributes"), "attribute")
        for tag, v in (("name", "score"), ("mutable", "False"), ("input_type", "number"), ("default_value", "0"),
                       ("values", "0;1;0.000001")):
            ET.SubElement(attrs, tag).text = v
    n = 0
    for index, (_id, name, _s, w, h, result, _e) in enumerate(rows):
        img = ET.SubElement(root, "image", id=str(index), name=name, width=str(int(w)), height=str(int(h)))
        for s in image_shapes(result):
            common = {"label": s.label, "source": "auto", "occluded": "0", "z_order": "0"}
            if s.mask is not None and s.mask.any() and shapes == "mask":
                runs, (left, top, bw, bh) = mask_rle(s.mask)
                el = ET.SubElement(img, "mask", rle=", ".join(map(str, runs)), left=str(left), top=str(top),
                                   width=str(bw), height=str(bh), **common)
            elif s.polygon is not None and shapes == "polygon":
                el = ET.SubElement(img, "polygon", points=";".join(f"{x:.2f},{y:.2f}" for x, y in s.polygon), **common)
            else:
                x0, y0, x1, y1 = s.box
                el = ET.SubElement(img, "box", xtl=f"{x0:.2f}", ytl=f"{y0:.2f}", xbr=f"{x1:.2f}", ybr=f"{y1:.2f}", **common)
            ET.SubElement(el, "attribute", name="score").text = f"{s.score:.6f}"
            n += 1
    ET.indent(root)
    with atomic_file(path, "wb") as fh:
        fh.write(b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n")
    return n
