"""Label Studio's JSON task list (its "JSON" export, or the import file vfm label writes) → a Dataset.

Each task's regions come from its newest annotation that was not cancelled, else from its first
prediction (Label Studio's JSON export lists predictions by id only, so from an export only
annotations are read; vfm label's import file holds whole predictions). ``rectanglelabels`` are boxes (x / y / width / height in percent of
``original_width/height``; rotated ones are an error), ``polygonlabels`` masks rasterized from the
percent points, ``brushlabels`` masks decoded from Label Studio's brush RLE; other result types
(choices, text, keypoints) are skipped. An image's file name is the ``d=`` path of a local-files URL,
the file of an upload (without Label Studio's 8-character prefix) or the last part of any other URL,
relative to ``--images`` (default: the JSON's folder). Class order is the label order of a
``labelstudio_config.xml`` beside the JSON (the project's labeling config, as vfm writes it), else
first appearance.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from vfm.formats.dataset import Dataset, DatasetError, box_item, image_size, polygon_mask

KINDS = ("rectanglelabels", "polygonlabels", "brushlabels")
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def file_name(ref: str) -> str:
    """The image's path as a dataset file name, from a Label Studio image URL."""
    parts = urlsplit(ref)
    if parts.path.rstrip("/") == "/data/local-files":
        d = parse_qs(parts.query).get("d")
        if d:
            return unquote(d[0]).lstrip("/")
    name = unquote(parts.path.rsplit("/", 1)[-1])
    if parts.path.startswith("/data/upload/"):
        name = _UPLOAD_PREFIX.sub("", name)
    return name


def _regions(task: dict, where: str) -> list:
    anns = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    preds = [p for p in task.get("predictions") or [] if isinstance(p, dict)]  # an export lists them by id only
    source = anns[-1] if anns else next(iter(preds), None)
    if source is None:
        return []
    if not isinstance(source, dict) or not isinstance(source.get("result", []), list):
        raise DatasetError(f"{where}: an annotation or prediction has no 'result' list")
    return source.get("result", [])


def _config_labels(path: Path) -> list[str]:
    if not path.is_file():
        return []
    from vfm.errors import VfmError
    from vfm.labelstudio.config import LabelConfig

    try:
        config = LabelConfig.parse(path.read_text(encoding="utf-8"))
    except (VfmError, UnicodeDecodeError) as exc:
        raise DatasetError(f"'{path}' is not a usable Label Studio labeling config ({exc})") from None
    names: list[str] = []
    for control in config.controls:
        names += [v for v in control.label_values if v not in names]
    return names


def read_labelstudio(doc, path: Path, images: str | None) -> Dataset:
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(t, dict) for t in doc):
        raise DatasetError(f"'{path}' is not a Label Studio task list (a JSON list of tasks)")
    from vfm.formats.ls_brush import decode_brush

    root = Path(images) if images else path.parent
    ds = Dataset(categories=_config_labels(path.with_name("labelstudio_config.xml")), image_root=str(root))
    for n, task in enumerate(doc, start=1):
        where = f"'{path}' task {task.get('id', n)}"
        data = task.get("data")
        ref = next((v for v in data.values() if isinstance(v, str)), None) if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(data.get("image"), str):
            ref = data["image"]
        if not ref:
            raise DatasetError(f"{where} has no image URL in 'data'")
        name = file_name(ref)
        regions = [r for r in _regions(task, where) if isinstance(r, dict) and r.get("type") in KINDS]
        size = next(((r.get("original_width"), r.get("original_height")) for r in regions
                     if r.get("original_width") and r.get("original_height")), None)
        try:
            w, h = (int(size[0]), int(size[1])) if size else image_size(root / name)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: original_width/original_height are not numbers") from None
        anns = []
        for k, r in enumerate(regions, start=1):
            at = f"{where} region {r.get('id', k)}"
            value, kind = r.get("value"), r["type"]
            labels = value.get(kind) if isinstance(value, dict) else None
            if not isinstance(labels, list) or not labels or not isinstance(labels[0], str):
                raise DatasetError(f"{at} has no {kind} label")
            label = ds.category(labels[0])
            score = float(r["score"]) if isinstance(r.get("score"), (int, float)) else 1.0
            try:
                if kind == "rectanglelabels":
                    if value.get("rotation") not in (None, 0, 0.0):
                        raise DatasetError(f"{at} is a rotated rectangle; vfm's datasets hold axis-aligned boxes")
                    x0, y0 = float(value["x"]) * w / 100, float(value["y"]) * h / 100
                    x1, y1 = x0 + float(value["width"]) * w / 100, y0 + float(value["height"]) * h / 100
                    anns.append(box_item(label, x0, y0, x1, y1, w, h, at, score))
                elif kind == "polygonlabels":
                    pts = np.asarray(value["points"], dtype=np.float64).reshape(-1, 2) * (w / 100, h / 100)
                    if len(pts) < 3:
                        raise DatasetError(f"{at} is a polygon of {len(pts)} points")
                    anns.append(box_item(label, *map(float, pts.min(0)), *map(float, pts.max(0)), w, h, at, score,
                                         polygon_mask(pts, w, h)))
                else:
                    if value.get("format") != "rle" or not isinstance(value.get("rle"), list):
                        raise DatasetError(f"{at} is a brush without Label Studio's rle list")
                    mask = decode_brush(value["rle"], h, w)
                    if not mask.any():
                        continue
                    ys, xs = np.nonzero(mask)
                    x0, y0, x1, y1 = float(xs.min()), float(ys.min()), xs.max() + 1.0, ys.max() + 1.0
                    anns.append(box_item(label, x0, y0, x1, y1, w, h, at, score, mask))
            except (KeyError, TypeError, ValueError) as exc:
                raise DatasetError(f"{at} is malformed ({exc})") from None
        ds.images.append((name, w, h, anns))
    return ds
