"""Label Studio import JSON from a labeling run: one task per image with the run's predictions.

``OUT/labelstudio.json`` is a JSON list of tasks::

    {"id": image_id, "data": {"image": PREFIX + file_name},
     "predictions": [{"model_version": "vfm", "score": mean score, "result": [...]}]}

Result items (``from_name`` / ``to_name`` default to ``"label"`` / ``"image"``, configurable):

* masks, ``mask_format="brush"`` (default): ``type: "brushlabels"``, ``value: {"format": "rle",
  "rle": [...], "brushlabels": [name]}`` in Label Studio's own brush RLE (see ``ls_brush``);
* masks, ``mask_format="polygon"``: ``type: "polygonlabels"``, ``value.points`` in percent of the
  image size (largest outer contour, as in the YOLO writer);
* boxes only (``--task detect``): ``type: "rectanglelabels"``, x/y/width/height in percent;
* tags: ``type: "choices"`` with the tag names.

``labeling_config`` returns the matching ``<View>`` XML to paste into the project settings.
The default image prefix ``/data/local-files/?d=`` is Label Studio's local-files storage URL;
set it to where your images are served.
"""

from __future__ import annotations

import json
import os
from typing import Any
from xml.sax.saxutils import quoteattr

from vfm.formats._atomic import atomic_file

DEFAULT_FROM_NAME = "label"
DEFAULT_TO_NAME = "image"
DEFAULT_IMAGE_PREFIX = "/data/local-files/?d="


def _kind(task: str, mask_format: str) -> str:
    if task == "tag":
        return "choices"
    if task == "detect":
        return "rectanglelabels"
    return "polygonlabels" if mask_format == "polygon" else "brushlabels"


def labeling_config(categories: list[str], task: str, *, mask_format: str = "brush",
                    from_name: str = DEFAULT_FROM_NAME, to_name: str = DEFAULT_TO_NAME) -> str:
    kind = _kind(task, mask_format)
    tag = {"choices": "Choices", "rectanglelabels": "RectangleLabels", "polygonlabels": "PolygonLabels",
           "brushlabels": "BrushLabels"}[kind]
    extra = ' choice="multiple"' if kind == "choices" else ""
    child = "Choice" if kind == "choices" else "Label"
    lines = ["<View>", f"  <Image name={quoteattr(to_name)} value=\"$image\"/>",
             f"  <{tag} name={quoteattr(from_name)} toName={quoteattr(to_name)}{extra}>"]
    lines += [f"    <{child} value={quoteattr(c)}/>" for c in categories]
    lines += [f"  </{tag}>", "</View>"]
    return "\n".join(lines) + "\n"


def _region(kind: str, value: dict[str, Any], label: str, width: int, height: int, from_name: str, to_name: str,
            item_id: str, score: float | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "from_name": from_name, "to_name": to_name, "type": kind,
                            "original_width": width, "original_height": height, "image_rotation": 0,
                            "value": {**value, kind: [label]}}
    if score is not None:
        item["score"] = score
    return item


def rectangle_region(xywh, label: str, width: int, height: int, *, from_name: str = DEFAULT_FROM_NAME,
                     to_name: str = DEFAULT_TO_NAME, item_id: str = "r1", score: float | None = None) -> dict[str, Any]:
    """A ``rectanglelabels`` region: x/y/width/height in percent of the image size."""
    x, y, w, h = (float(v) for v in xywh)
    value = {"x": 100 * x / width, "y": 100 * y / height, "width": 100 * w / width, "height": 100 * h / height,
             "rotation": 0}
    return _region("rectanglelabels", value, label, width, height, from_name, to_name, item_id, score)


def brush_region(mask, label: str, *, from_name: str = DEFAULT_FROM_NAME, to_name: str = DEFAULT_TO_NAME,
                 item_id: str = "b1", score: float | None = None) -> dict[str, Any]:
    """A ``brushlabels`` region holding the HxW mask in Label Studio's brush RLE."""
    from vfm.formats.ls_brush import encode_brush

    height, width = mask.shape
    return _region("brushlabels", {"format": "rle", "rle": encode_brush(mask)}, label, width, height, from_name,
                   to_name, item_id, score)


def polygon_region(mask, label: str, *, from_name: str = DEFAULT_FROM_NAME, to_name: str = DEFAULT_TO_NAME,
                   item_id: str = "p1", score: float | None = None) -> dict[str, Any] | None:
    """A ``polygonlabels`` region: the mask's largest outer contour, points in percent; None if it has none."""
    from vfm.formats.yolo import mask_polygon

    height, width = mask.shape
    poly = mask_polygon(mask)
    if poly is None:
        return None
    points = [[100 * px / width, 100 * py / height] for px, py in poly.tolist()]
    return _region("polygonlabels", {"points": points}, label, width, height, from_name, to_name, item_id, score)


def image_result(result: dict[str, Any], width: int, height: int, kind: str, from_name: str, to_name: str,
                 first_id: int) -> list[dict[str, Any]]:
    from vfm.results.rle import decode_rle

    if kind == "choices":
        tags = result.get("tags", [])
        if not tags:
            return []
        return [{"id": f"t{first_id}", "from_name": from_name, "to_name": to_name, "type": "choices",
                 "value": {"choices": [t["name"] for t in tags]}}]
    items = []
    names = dict(from_name=from_name, to_name=to_name)
    for k, ann in enumerate(result.get("annotations", [])):
        ids = dict(item_id=f"a{first_id + k}", score=ann["score"])
        if kind == "rectanglelabels" or "segmentation" not in ann:
            item = rectangle_region(ann["bbox"], ann["category"], width, height, **names, **ids)
        elif kind == "brushlabels":
            item = brush_region(decode_rle(ann["segmentation"]), ann["category"], **names, **ids)
        else:
            item = polygon_region(decode_rle(ann["segmentation"]), ann["category"], **names, **ids)
            if item is None:
                continue
        items.append(item)
    return items


def write_labelstudio(store, categories: list[str], task: str, path: str | os.PathLike, *, mask_format: str = "brush",
                      from_name: str = DEFAULT_FROM_NAME, to_name: str = DEFAULT_TO_NAME,
                      image_prefix: str = DEFAULT_IMAGE_PREFIX) -> int:
    """Write the task list to ``path`` (streamed, atomic); returns the number of tasks."""
    kind = _kind(task, mask_format)
    n = 0
    ann_id = 1
    with atomic_file(path) as fh:
        fh.write("[")
        for image_id, name, _s, w, h, result, _e in store.rows("done"):
            res = json.loads(result)
            items = image_result(res, w, h, kind, from_name, to_name, ann_id)
            ann_id += len(res.get("annotations", []))
            scores = [i["score"] for i in items if "score" in i] or [t["score"] for t in res.get("tags", [])]
            task_doc = {"id": image_id, "data": {"image": image_prefix + name},
                        "predictions": [{"model_version": "vfm", "score": round(sum(scores) / len(scores), 6) if scores else 0.0,
                                         "result": items}]}
            fh.write(("\n" if n == 0 else ",\n") + json.dumps(task_doc))
            n += 1
        fh.write("]\n")
    return n
