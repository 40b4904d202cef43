"""One COCO JSON per split beside the whole run's coco.json: ``coco_train.json``, ``coco_val.json``,
``coco_test.json`` (with ``--split``; see split.py for how images are assigned).

Each file is a complete COCO instances dataset of its split's images: image ids are the store's
(as in coco.json), categories are the same, annotation ids run 1.. within the file. Split files
left from an earlier run with other splits are removed, so OUT never holds a stale split.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vfm.formats.coco_dataset import write_coco
from vfm.formats.split import SPLITS, SplitRows


def split_file(split: str) -> str:
    return f"coco_{split}.json"


def write_coco_splits(store, categories: list[str], out_dir: str | os.PathLike, fractions: dict[str, float] | None,
                      info: dict[str, Any] | None = None) -> dict[str, int]:
    """Write ``coco_<split>.json`` for each split of ``fractions`` (none when None); returns annotations per split."""
    out_dir = Path(out_dir)
    counts = {}
    for split in SPLITS:
        path = out_dir / split_file(split)
        if fractions and split in fractions:
            counts[split] = write_coco(SplitRows(store, fractions, split), categories, path,
                                       info={**(info or {}), "split": split})
        elif path.exists():
            path.unlink()
    return counts
