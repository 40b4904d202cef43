"""COCO-style JSON for one image: the document `vfm segment --json` (and every task's --json) prints.

Document shape::

    {"image": {"width": W, "height": H, "file_name"?: str},
     "categories"?: [{"id": 1.., "name": str}],
     "annotations": [{"id", "segmentation": {"size": [H, W], "counts": str}, "bbox": [x, y, w, h],
                      "area", "score", "prompt"?, "category_id"?, "category_name"?, ...extras}]}

``bbox`` is COCO XYWH in original-image pixels; ``segmentation`` is a compressed RLE readable by
``pycocotools.mask.decode``. Box-only results (detectors) have no ``segmentation`` and their
``area`` is the box area.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfm.results.instances import Instances

#: ``Instances.data`` keys copied into each annotation when present (JSON-ready per item).
EXTRA_KEYS = ("stability_score", "point_coords", "crop_box", "mask_index", "prompt_index", "label_score", "semantic_label")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def xyxy_to_xywh(xyxy: np.ndarray) -> np.ndarray:
    """Nx4 XYXY -> Nx4 XYWH."""
    out = np.asarray(xyxy, dtype=np.float64).copy()
    out[:, 2:] -= out[:, :2]
    return out


def instances_to_annotations(
    instances: Instances,
    *,
    image_id: int | None = None,
    first_id: int = 1,
    category_ids: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One COCO annotation dict per instance (RLE segmentation when masks exist).

    ``category_ids`` maps class names to COCO category ids; without it a category id is the
    0-based ``class_ids`` + 1 (COCO ids start at 1).
    """
    rles = instances.rle_list() if instances.has_masks else None
    areas = instances.areas
    if rles is not None:
        from vfm.results.rle import rles_to_xyxy

        boxes = xyxy_to_xywh(rles_to_xyxy(rles))
    else:
        boxes = xyxy_to_xywh(instances.xyxy)
    out = []
    for i in range(len(instances)):
        ann: dict[str, Any] = {"id": first_id + i}
        if image_id is not None:
            ann["image_id"] = int(image_id)
        if rles is not None:
            ann["segmentation"] = {"size": list(rles[i]["size"]), "counts": rles[i]["counts"]}
        ann["bbox"] = [round(float(v), 2) for v in boxes[i]]
        ann["area"] = float(areas[i])
        ann["score"] = round(float(instances.scores[i]), 6)
        if instances.class_names is not None:
            name = instances.class_names[i]
            ann["category_name"] = name
            if category_ids is not None:
                ann["category_id"] = int(category_ids[name])
            elif instances.class_ids is not None:
                ann["category_id"] = int(instances.class_ids[i]) + 1
        elif instances.class_ids is not None:
            ann["category_id"] = int(instances.class_ids[i]) + 1
        if instances.prompts is not None and instances.prompts[i] is not None:
            ann["prompt"] = _jsonable(instances.prompts[i])
        for key in EXTRA_KEYS:
            if key in instances.data:
                ann[key] = _jsonable(instances.data[key][i])
        if "category_id" in ann or "category_name" in ann:
            ann["iscrowd"] = 0
        out.append(ann)
    return out


def instances_to_document(
    instances: Instances,
    *,
    file_name: str | None = None,
    categories: list[str] | None = None,
) -> dict[str, Any]:
    """The single-image COCO-style document printed by ``vfm <task> --json``.

    ``categories`` become ``{"id": 1.., "name"}`` in list order, as in every COCO file; an
    annotation's ``category_id`` is its class's id there.
    """
    h, w = instances.image_size
    image: dict[str, Any] = {"width": w, "height": h}
    if file_name is not None:
        image["file_name"] = file_name
    doc: dict[str, Any] = {"image": image}
    category_ids = None
    if categories is not None:
        doc["categories"] = [{"id": i, "name": name} for i, name in enumerate(categories, start=1)]
        category_ids = {name: i for i, name in enumerate(categories, start=1)}
    doc["annotations"] = instances_to_annotations(instances, category_ids=category_ids)
    return doc
