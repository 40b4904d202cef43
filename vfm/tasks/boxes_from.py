"""The boxes of an existing dataset as SAM prompts: ``vfm label SOURCE --boxes-from DATASET``.

    prompts = BoxPrompts.load("coco.json", source_root="photos/")     # COCO, YOLO, VOC or LabelMe
    prompts.for_image("photos/sub/a.jpg")                             # [(class name, x0, y0, x1, y1)]

Images are matched by their path relative to SOURCE and the dataset's image root, else by file name
when that is unique in the dataset. The format is found from DATASET (a .json file: COCO; a folder
with data.yaml: YOLO; with Annotations/ or .xml files: VOC; with .json files: LabelMe) unless given.
"""

from __future__ import annotations

import os
from pathlib import Path

from vfm.formats.dataset import DatasetError


def detect_format(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".json":
        return "coco"
    if p.is_file() and p.name in ("data.yaml", "data.yml"):
        return "yolo"
    if p.is_dir():
        if (p / "data.yaml").is_file():
            return "yolo"
        if (p / "Annotations").is_dir() or any(p.glob("*.xml")):
            return "voc"
        if any(p.rglob("*.json")):
            return "labelme"
    if not p.exists():
        raise DatasetError(f"--boxes-from '{path}' does not exist")
    raise DatasetError(f"--boxes-from '{path}' is not a COCO JSON, a YOLO folder (data.yaml), a VOC folder or a LabelMe "
                       "folder; name the format with --boxes-format")


class BoxPrompts:
    def __init__(self, dataset, source_root: str):
        self.dataset = dataset
        self.source_root = source_root
        self.by_name: dict[str, list] = {}
        by_base: dict[str, list] = {}
        for name, _w, _h, anns in dataset.images:
            boxes = [(a["category"], a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3])
                     for a in anns]
            self.by_name[name] = boxes
            by_base.setdefault(os.path.basename(name), []).append(boxes)
        self.by_base = {k: v[0] for k, v in by_base.items() if len(v) == 1}

    @classmethod
    def load(cls, path: str, fmt: str | None = None, *, source_root: str = "") -> "BoxPrompts":
        from vfm.formats.readers import read_dataset

        return cls(read_dataset(path, fmt or detect_format(path)), source_root)

    @property
    def categories(self) -> list[str]:
        return list(self.dataset.categories)

    def for_image(self, path: str) -> list[tuple[str, float, float, float, float]]:
        rel = os.path.relpath(path, self.source_root).replace(os.sep, "/") if self.source_root else path
        if rel in self.by_name:
            return self.by_name[rel]
        return self.by_base.get(os.path.basename(path), [])
