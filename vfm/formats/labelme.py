"""LabelMe JSON, one file per image, as X-AnyLabeling and LabelMe 5 write it.

    OUT/labelme/<path>.json   {"version", "flags": {}, "shapes": [...], "imagePath", "imageData": null,
                               "imageHeight", "imageWidth"}

A mask becomes a ``polygon`` shape (its largest outer contour, vertices in pixels), a box without
mask a ``rectangle`` (two points: top-left and bottom-right corner); every shape has ``label``,
``points``, ``group_id`` null, ``description`` "", ``shape_type``, ``flags`` {} and the model's
``score`` (X-AnyLabeling's extra key). ``imagePath`` is the image's path relative to the JSON file,
so LabelMe opens it where the dataset lies; no image data is embedded. ``labels.txt`` lists the
classes in the dataset's order (LabelMe's ``--labels`` file; LabelMe JSON has no class list).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vfm.formats._atomic import atomic_dir, stem_path
from vfm.formats.shapes import image_shapes

LABELME_VERSION = "5.5.0"


def labelme_document(shapes, image_path: str, width: int, height: int) -> dict:
    items = []
    for s in shapes:
        if s.polygon is not None:
            points, kind = [[round(float(x), 2), round(float(y), 2)] for x, y in s.polygon], "polygon"
        else:
            x0, y0, x1, y1 = s.box
            points, kind = [[round(x0, 2), round(y0, 2)], [round(x1, 2), round(y1, 2)]], "rectangle"
        items.append({"label": s.label, "points": points, "group_id": None, "description": "", "shape_type": kind,
                      "flags": {}, "score": round(s.score, 6)})
    return {"version": LABELME_VERSION, "flags": {}, "shapes": items, "imagePath": image_path, "imageData": None,
            "imageHeight": int(height), "imageWidth": int(width)}


def write_labelme(store, out_dir: str | os.PathLike, source_root: str, categories: list[str] | None = None) -> int:
    out = Path(out_dir)
    n = 0
    with atomic_dir(out / "labelme") as d:
        if categories:  # LabelMe's --labels file: the class order (LabelMe JSON itself has none)
            (d / "labels.txt").write_text("".join(c + "\n" for c in categories), encoding="utf-8")
        for _id, name, _s, w, h, result, _e in store.rows("done"):
            rel = stem_path(name, ".json")
            target = d / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            final_dir = (out / "labelme" / rel).parent
            image_path = os.path.relpath(Path(source_root) / name, final_dir)
            doc = labelme_document(image_shapes(result), image_path.replace(os.sep, "/"), w, h)
            target.write_text(json.dumps(doc, indent=2), encoding="utf-8")
            n += 1
    return n
