"""Label-map files: indexed PNGs of semantic maps, COCO panoptic PNG + JSON, class lists.

* ``labels.png``: the class index of every pixel (the model's ``id2label`` order, 0-based). Up to
  256 classes it is an 8-bit palette PNG ("P" mode: the pixel value is the class index, the palette
  only colours it for viewers); above that a 16-bit grayscale PNG. 255 in ground truth means
  "ignore" in `vfm eval --task semantic`, the ADE20K / Cityscapes convention.
* ``classes.txt``: one class name per line, line i (0-based) is class i.
* COCO panoptic (``panoptic.png`` + ``panoptic.json``): the PNG's RGB is the segment id,
  ``id = R + 256 G + 256^2 B`` (0 = no segment); the JSON is a COCO panoptic dataset: ``images``,
  ``annotations`` (one per image: ``image_id``, ``file_name`` of its PNG, ``segments_info`` with
  ``id``, ``category_id`` (class index + 1), ``area``, ``bbox`` XYWH, ``iscrowd`` 0, ``score``) and
  ``categories`` (``id``, ``name``, ``isthing``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vfm.results.instances import Instances
from vfm.results.semantic import SemanticMap

IGNORE_INDEX = 255


def class_palette(n: int) -> list[int]:
    """A flat RGB palette of 256 entries, distinct colours for the first ``n`` classes."""
    from vfm.formats.png import palette

    colors = palette(max(n, 1)).reshape(-1).tolist()[: 3 * 256]
    return colors + [0] * (768 - len(colors))


def label_png(labels: np.ndarray, n_classes: int) -> Image.Image:
    labels = np.asarray(labels)
    if n_classes <= 256 and (labels.size == 0 or labels.max() < 256):
        img = Image.fromarray(labels.astype(np.uint8), mode="P")
        img.putpalette(class_palette(n_classes))
        return img
    return Image.fromarray(labels.astype(np.uint16))


def write_semantic(sem: SemanticMap, out_dir: str | os.PathLike) -> list[str]:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    label_png(sem.labels, len(sem.class_names)).save(d / "labels.png")
    write_classes(sem.class_names, d / "classes.txt")
    return ["labels.png", "classes.txt"]


def write_classes(names: list[str], path: str | os.PathLike) -> None:
    Path(path).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """An indexed / grayscale PNG (8 or 16 bit) as an int64 HxW array of its stored values."""
    with Image.open(path) as im:
        if im.mode not in ("P", "L", "I;16", "I", "I;16B"):
            raise ValueError(f"mode {im.mode} is not a label map (save class indices as an 8-bit palette/grayscale or 16-bit PNG)")
        return np.asarray(im).astype(np.int64)


def panoptic_png(instances: Instances) -> tuple[np.ndarray, list[int]]:
    """(HxWx3 uint8 with id = R + 256 G + 256^2 B, the id of each instance: 1..N)."""
    h, w = instances.image_size
    ids = np.zeros((h, w), np.int64)
    seg_ids = list(range(1, len(instances) + 1))
    for i, sid in enumerate(seg_ids):
        ids[instances.mask(i)] = sid
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)
    return rgb, seg_ids


def panoptic_document(instances: Instances, class_names: list[str], *, file_name: str, png_name: str,
                      image_id: int = 1, isthing: list[bool] | None = None) -> dict[str, Any]:
    """A COCO panoptic dataset of one image (see the module docstring)."""
    from vfm.formats.coco import xyxy_to_xywh

    h, w = instances.image_size
    _, seg_ids = panoptic_png(instances)
    boxes = xyxy_to_xywh(instances.xyxy) if len(instances) else np.zeros((0, 4))
    things = instances.data.get("isthing")
    segments = [{"id": sid, "category_id": int(instances.class_ids[i]) + 1, "area": int(instances.areas[i]),
                 "bbox": [round(float(v), 2) for v in boxes[i]], "iscrowd": 0, "score": round(float(instances.scores[i]), 6)}
                for i, sid in enumerate(seg_ids)]
    thing_of = {}
    if things is not None:
        for cid, t in zip(instances.class_ids, things):
            thing_of[int(cid)] = bool(t)
    categories = [{"id": i + 1, "name": n, "isthing": int(thing_of.get(i, True) if isthing is None else isthing[i])}
                  for i, n in enumerate(class_names)]
    return {"images": [{"id": image_id, "file_name": file_name, "width": w, "height": h}],
            "annotations": [{"image_id": image_id, "file_name": png_name, "segments_info": segments}],
            "categories": categories}
