"""Per-image PNG masks from a labeling run.

``OUT/masks/<path>.png`` (SOURCE's relative path, extension replaced) is a 16-bit instance-id map
the size of the image: 0 is background and pixel value k marks the k-th annotation of that image in
the COCO file's order (annotation id = that image's first annotation id + k - 1). Where masks
overlap, the smaller mask wins (masks are painted largest first). ``OUT/masks/index.jsonl`` has one
line per image, ``{"file_name", "png", "categories": [name of instance 1, 2, ...]}``.
Box-only runs (``--task detect``) have no masks to write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from vfm.formats._atomic import atomic_dir, stem_path


def write_masks(store, out_dir: str | os.PathLike) -> int:
    from vfm.results.rle import decode_rle

    n = 0
    with atomic_dir(Path(out_dir) / "masks") as d, open(d / "index.jsonl", "w", encoding="utf-8") as index:
        for _id, name, _s, w, h, result, _e in store.rows("done"):
            anns = json.loads(result).get("annotations", [])
            ids = np.zeros((h, w), dtype=np.uint16)
            order = sorted(range(len(anns)), key=lambda k: -anns[k]["area"])
            for k in order:
                if "segmentation" in anns[k]:
                    ids[decode_rle(anns[k]["segmentation"])] = k + 1
            rel = stem_path(name, ".png")
            target = d / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(ids).save(target)
            index.write(json.dumps({"file_name": name, "png": rel, "categories": [a["category"] for a in anns]}) + "\n")
            n += 1
    return n
