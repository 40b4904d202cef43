"""A whole labeling run as one COCO instances JSON, streamed from the state store.

    {"info": {...}, "images": [{"id", "file_name", "width", "height", "tags"?, "video"?, "frame"?, "time"?}],
     "categories": [{"id", "name", "supercategory"}],
     "annotations": [{"id", "image_id", "category_id", "segmentation"?: RLE, "bbox": XYWH, "area",
                      "score", "iscrowd": 0, "track_id"?}]}

The frames of tracked videos (`vfm label --task track`) carry ``video``, ``frame`` (source frame
number) and ``time`` (seconds), and their annotations the object's ``track_id`` within the video.

Image ids are the store's ids (scan order); annotation ids run 1.. in (image id, within-image order),
so they are the same in every run over the same SOURCE. Images that could not be read are not
listed (see errors.jsonl). The file is written item by item (never one big dict in memory) into a
temp file that replaces ``coco.json`` when complete.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Iterator

from vfm.formats._atomic import atomic_file

#: Image fields of a video's frame: the video (path relative to SOURCE), source frame number, time (s).
VIDEO_KEYS = ("video", "frame", "time")


def iter_annotations(rows: Iterable[tuple], category_ids: dict[str, int]) -> Iterator[dict[str, Any]]:
    """COCO annotations with stable ids from store rows ``(id, name, status, w, h, result, error)``."""
    ann_id = 0
    for image_id, _name, _status, _w, _h, result, _err in rows:
        for item in json.loads(result).get("annotations", []):
            ann_id += 1
            ann: dict[str, Any] = {"id": ann_id, "image_id": image_id,
                                   "category_id": category_ids.get(item["category"], 0)}
            if "segmentation" in item:
                ann["segmentation"] = item["segmentation"]
            ann["bbox"] = item["bbox"]
            ann["area"] = item["area"]
            ann["score"] = item["score"]
            ann["iscrowd"] = 0
            if "track_id" in item:
                ann["track_id"] = item["track_id"]
            yield ann


def write_coco(store, categories: list[str], path: str | os.PathLike, info: dict[str, Any] | None = None) -> int:
    """Write ``path``; returns the number of annotations."""
    category_ids = {name: i + 1 for i, name in enumerate(categories)}
    n = 0
    with atomic_file(path) as fh:
        fh.write('{"info": ' + json.dumps(info or {}, sort_keys=True) + ',\n"images": [')
        first = True
        for image_id, name, _s, w, h, result, _e in store.rows("done"):
            img: dict[str, Any] = {"id": image_id, "file_name": name, "width": w, "height": h}
            doc = json.loads(result)
            if doc.get("tags") is not None:
                img["tags"] = doc["tags"]
            for key in VIDEO_KEYS:  # a video's frame (vfm label --task track)
                if key in doc:
                    img[key] = doc[key]
            fh.write(("\n" if first else ",\n") + json.dumps(img))
            first = False
        fh.write('],\n"categories": [')
        fh.write(",\n".join(json.dumps({"id": i + 1, "name": c, "supercategory": ""}) for i, c in enumerate(categories)))
        fh.write('],\n"annotations": [')
        first = True
        for ann in iter_annotations(store.rows("done"), category_ids):
            fh.write(("\n" if first else ",\n") + json.dumps(ann))
            first = False
            n += 1
        fh.write("]}\n")
    return n
