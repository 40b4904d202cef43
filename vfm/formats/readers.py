"""Readers of box and mask datasets into a vfm.formats.dataset.Dataset: COCO, YOLO, Pascal VOC, LabelMe.

    ds = read_dataset("coco.json", "coco")            # or a YOLO root (data.yaml), a VOC or LabelMe folder

- ``coco``: a COCO instances JSON; masks from compressed / uncompressed RLE or polygons; ``score``
  kept when present (1.0 otherwise); images resolve against the JSON's folder (or ``images``).
- ``yolo``: an Ultralytics dataset root with data.yaml (``names``) and ``labels/<split>/*.txt`` beside
  ``images/<split>/``: ``class cx cy w h`` lines are boxes, ``class x1 y1 ...`` polygons (masks);
  image sizes from the images.
- ``voc``: a folder of Pascal VOC XML (``Annotations/`` inside it, or the XMLs themselves), boxes in
  the devkit's 1-based inclusive pixels; images in ``JPEGImages/`` (or ``images``); class order from
  ``labels.txt`` when present, else first appearance.
- ``labelme``: a folder of LabelMe JSON; ``polygon`` shapes are masks, ``rectangle`` boxes (other
  shape types are an error naming the file); the image is ``imagePath`` relative to the JSON; class
  order from ``labels.txt`` when present, else first appearance.
- ``labelstudio``: a Label Studio JSON export / import task list (vfm.formats.labelstudio_reader).

Every problem (missing file, class id out of range, box outside the image, malformed file) is a
DatasetError naming the file (and line): nothing is written from a dataset that does not read whole.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from vfm.formats.dataset import Dataset, DatasetError, box_item, image_size, polygon_mask

FORMATS = ("coco", "yolo", "voc", "labelme", "labelstudio")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def read_dataset(path: str | os.PathLike, fmt: str, images: str | None = None) -> Dataset:
    if fmt not in FORMATS:
        raise DatasetError(f"--from '{fmt}' is not one of {', '.join(FORMATS)}")
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"dataset '{path}' does not exist")
    return {"coco": _coco, "yolo": _yolo, "voc": _voc, "labelme": _labelme, "labelstudio": _labelstudio}[fmt](p, images)


def _labelstudio(path: Path, images: str | None) -> Dataset:
    from vfm.formats.labelstudio_reader import read_labelstudio

    if not path.is_file():
        raise DatasetError(f"--from labelstudio takes a Label Studio JSON export file; '{path}' is a folder")
    return read_labelstudio(_json(path), path, images)


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"'{path}' is not valid JSON ({exc.__class__.__name__})") from None


def _coco(path: Path, images: str | None) -> Dataset:
    from pycocotools import mask as mask_utils

    if not path.is_file():
        raise DatasetError(f"--from coco takes a COCO JSON file; '{path}' is a folder")
    doc = _json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("categories"), list):
        raise DatasetError(f"'{path}' is not a COCO instances file (no 'images' and 'categories' lists)")
    try:
        cats = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
        imgs = {int(i["id"]): (str(i["file_name"]), int(i["width"]), int(i["height"])) for i in doc["images"]}
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"'{path}': an image lacks id/file_name/width/height or a category id/name") from None
    ds = Dataset(categories=[cats[k] for k in sorted(cats)], image_root=images or str(path.parent))
    per_image: dict[int, list] = {k: [] for k in imgs}
    for n, a in enumerate(doc.get("annotations", []), start=1):
        where = f"'{path}' annotation {a.get('id', n)}"
        try:
            image_id, cat, (x, y, w, h) = int(a["image_id"]), int(a["category_id"]), [float(v) for v in a["bbox"]]
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{where} lacks image_id, category_id or a 4-number bbox") from None
        if image_id not in imgs:
            raise DatasetError(f"{where} names image_id {image_id}, which the file does not list")
        if cat not in cats:
            raise DatasetError(f"{where} names category_id {cat}, which the file does not list")
        _, iw, ih = imgs[image_id]
        mask = None
        seg = a.get("segmentation")
        if seg:
            try:
                rle = mask_utils.frPyObjects(seg, ih, iw) if isinstance(seg, list) or isinstance(seg.get("counts"), list) else seg
                mask = mask_utils.decode(mask_utils.merge(rle) if isinstance(rle, list) else rle).astype(bool)
            except Exception:  # noqa: BLE001 - pycocotools raises several types for bad input
                raise DatasetError(f"{where} has a segmentation pycocotools cannot read") from None
            if mask.shape != (ih, iw):
                raise DatasetError(f"{where}: its mask is {mask.shape[1]}x{mask.shape[0]}, the image {iw}x{ih}")
        per_image[image_id].append(box_item(cats[cat], x, y, x + w, y + h, iw, ih, where, a.get("score", 1.0), mask))
    for image_id in sorted(imgs):
        name, w, h = imgs[image_id]
        ds.images.append((name, w, h, per_image[image_id]))
    return ds


def _yolo(path: Path, images: str | None) -> Dataset:
    import yaml

    yml = path / "data.yaml" if path.is_dir() else path
    if not yml.is_file():
        raise DatasetError(f"--from yolo takes an Ultralytics dataset folder with data.yaml; '{path}' has none")
    root = yml.parent
    try:
        meta = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise DatasetError(f"'{yml}' is not valid YAML") from None
    names = meta.get("names")
    if isinstance(names, dict):
        names = [str(names[k]) for k in sorted(names, key=int)]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"'{yml}' has no 'names' list of classes")
    ds = Dataset(categories=[str(n) for n in names], image_root=str(root / "images"))
    image_dir = root / "images"
    if not image_dir.is_dir():
        raise DatasetError(f"YOLO dataset '{root}' has no images/ folder")
    for img in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTS):
        rel = img.relative_to(image_dir)
        label = root / "labels" / rel.with_suffix(".txt")
        w, h = image_size(img)
        anns = []
        if label.is_file():
            for n, line in enumerate(label.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"'{label}' line {n}"
                try:
                    vals = [float(v) for v in line.split()]
                except ValueError:
                    raise DatasetError(f"{where} holds a value that is not a number") from None
                cls = int(vals[0])
                if cls != vals[0] or not 0 <= cls < len(names):
                    raise DatasetError(f"{where}: class {vals[0]:g} is not one of 0..{len(names) - 1} (data.yaml names)")
                if len(vals) == 5:
                    cx, cy, bw, bh = vals[1:]
                    anns.append(box_item(names[cls], (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                                         (cy + bh / 2) * h, w, h, where))
                elif len(vals) >= 7 and len(vals) % 2 == 1:
                    pts = np.array(vals[1:]).reshape(-1, 2) * [w, h]
                    mask = polygon_mask(pts, w, h)
                    anns.append(box_item(names[cls], pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max(),
                                         w, h, where, mask=mask))
                else:
                    raise DatasetError(f"{where} has {len(vals)} values; YOLO lines are class cx cy w h or class x1 y1 x2 y2 x3 y3 ...")
        ds.images.append((rel.as_posix(), w, h, anns))
    return ds


def _voc(path: Path, images: str | None) -> Dataset:
    xml_dir = path / "Annotations" if (path / "Annotations").is_dir() else path
    if not xml_dir.is_dir():
        raise DatasetError(f"--from voc takes a folder of Pascal VOC XML files; '{path}' is not a folder")
    files = sorted(xml_dir.rglob("*.xml"))
    if not files:
        raise DatasetError(f"'{xml_dir}' holds no .xml files")
    labels = path / "labels.txt"
    cats = [ln.strip() for ln in labels.read_text(encoding="utf-8").splitlines() if ln.strip()] if labels.is_file() else []
    image_root = images or str(path / "JPEGImages" if (path / "JPEGImages").is_dir() else path)
    ds = Dataset(categories=list(cats), image_root=image_root)
    for f in files:
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError as exc:
            raise DatasetError(f"'{f}' is not well-formed XML ({exc})") from None
        rel_dir = f.parent.relative_to(xml_dir).as_posix()
        filename = root.findtext("filename") or f.with_suffix(".jpg").name
        name = filename if rel_dir in ("", ".") else f"{rel_dir}/{filename}"
        try:
            w, h = int(root.findtext("size/width")), int(root.findtext("size/height"))
        except (TypeError, ValueError):
            w, h = image_size(Path(image_root) / name)
        anns = []
        for k, obj in enumerate(root.findall("object"), start=1):
            where = f"'{f}' object {k}"
            label = (obj.findtext("name") or "").strip()
            if not label:
                raise DatasetError(f"{where} has no <name>")
            try:
                xmin, ymin, xmax, ymax = (float(obj.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                raise DatasetError(f"{where} has no numeric bndbox xmin/ymin/xmax/ymax") from None
            anns.append(box_item(ds.category(label), xmin - 1, ymin - 1, xmax, ymax, w, h, where))
        ds.images.append((name, w, h, anns))
    return ds


def _labelme(path: Path, images: str | None) -> Dataset:
    if not path.is_dir():
        raise DatasetError(f"--from labelme takes a folder of LabelMe JSON files; '{path}' is not a folder")
    files = sorted(path.rglob("*.json"))
    if not files:
        raise DatasetError(f"'{path}' holds no LabelMe .json files")
    root = Path(images).resolve() if images else None
    labels = path / "labels.txt"
    cats = [ln.strip() for ln in labels.read_text(encoding="utf-8").splitlines() if ln.strip()] if labels.is_file() else []
    ds = Dataset(categories=cats, image_root="")
    image_paths = []
    for f in files:
        doc = _json(f)
        if not isinstance(doc, dict) or "shapes" not in doc or "imagePath" not in doc:
            raise DatasetError(f"'{f}' is not a LabelMe file (no 'shapes' and 'imagePath')")
        img = (f.parent / str(doc["imagePath"])).resolve()
        image_paths.append(img)
        try:
            w, h = int(doc["imageWidth"]), int(doc["imageHeight"])
        except (KeyError, TypeError, ValueError):
            w, h = image_size(img)
        anns = []
        for k, s in enumerate(doc["shapes"], start=1):
            where = f"'{f}' shape {k}"
            try:
                pts = np.asarray(s["points"], dtype=np.float64).reshape(-1, 2)
                label, kind = str(s["label"]), s.get("shape_type", "polygon")
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"{where} lacks a label or (x, y) points") from None
            if kind == "rectangle" and len(pts) == 2:
                (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
                anns.append(box_item(ds.category(label), x0, y0, x1, y1, w, h, where, s.get("score", 1.0)))
            elif kind == "polygon" and len(pts) >= 3:
                anns.append(box_item(ds.category(label), *pts.min(0), *pts.max(0), w, h, where, s.get("score", 1.0),
                                     polygon_mask(pts, w, h)))
            else:
                raise DatasetError(f"{where} is a '{kind}' of {len(pts)} points; vfm reads polygons and rectangles")
        ds.images.append((img, w, h, anns))
    base = root or Path(os.path.commonpath([p.parent for p in image_paths]))
    ds.image_root = str(base)
    ds.images = [(os.path.relpath(p, base).replace(os.sep, "/"), w, h, a) for p, w, h, a in ds.images]
    return ds
