"""Semantic label maps from a labeling run: ``OUT/semantic/<path>.png`` + ``OUT/semantic/classes.txt``.

Each PNG is the size of its image and holds, per pixel, the index of its class in classes.txt (line
i, 0-based, is class i; the run's categories in order, at most 255) as an 8-bit indexed PNG; 255 marks pixels no mask covers ("ignore", as ADE20K and Cityscapes ground truth). With
``--task semantic`` every pixel has a class. With mask tasks (ground, everything) the masks are
painted largest first, so where they overlap the smaller one wins, as in OUT/masks. Box-only runs
have no label maps. The folder is built aside and swapped in whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from vfm.formats._atomic import atomic_dir, stem_path
from vfm.formats.semantic import IGNORE_INDEX, label_png, write_classes


def write_semantic_dataset(store, categories: list[str], out_dir: str | os.PathLike) -> int:
    from vfm.results.rle import decode_rle

    from vfm.errors import PromptError

    index = {name: i for i, name in enumerate(categories)}
    if len(categories) > IGNORE_INDEX:
        raise PromptError(f"--format semantic writes 8-bit label maps with 255 as 'ignore': at most 255 classes, "
                          f"not {len(categories)}; use --format masks or coco")
    n = 0
    with atomic_dir(Path(out_dir) / "semantic") as d:
        write_classes(categories, d / "classes.txt")
        for _id, name, _s, w, h, result, _e in store.rows("done"):
            anns = json.loads(result).get("annotations", [])
            labels = np.full((h, w), IGNORE_INDEX, dtype=np.int64)
            for k in sorted(range(len(anns)), key=lambda k: -anns[k]["area"]):
                if "segmentation" in anns[k] and anns[k]["category"] in index:
                    labels[decode_rle(anns[k]["segmentation"])] = index[anns[k]["category"]]
            target = d / stem_path(name, ".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            label_png(labels, len(categories)).save(target)
            n += 1
    return n
