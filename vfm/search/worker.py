"""The per-batch function of ``vfm index``: read, hash, decode and embed a few images (and their objects).

``EmbedWork(config)`` loads the models once (each worker process / Ray actor does this once);
``work(items)`` takes ``[(name, path, size, mtime_ns, known_sha256), ...]`` and returns one record
per item, in order, for :meth:`vfm.search.db.IndexDB.put`::

    {"name", "path", "size", "mtime_ns", "sha256", "status": "done", "width", "height",
     "entries": [{"kind": "image", "vector"}, {"kind": "object", "bbox", "rle", "category", "score", "vector"}]}
    {"name", ..., "status": "error", "error": "<one sentence>"}         # unreadable: listed, not fatal
    {"name", ..., "status": "unchanged"}                                # same bytes as indexed: keep

Objects (``config["objects"]``): every annotation of a COCO file (matched by ``file_name``; RLE or
polygon masks, or boxes only), or the
masks of segment-everything run on the fly. Each object is embedded as its masked crop: the mask's
(or box's) bounding box cut out, pixels outside the mask set to mid-grey (127), so the vector
describes the object and not its surroundings.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from vfm.errors import VfmError

GREY = 127


class EmbedWork:
    def __init__(self, config: dict[str, Any], device: str | None = None):
        from vfm.tasks.embed import Embedder

        self.config = config
        self.embedder = Embedder.load(config["model"], device=device, precision=config.get("precision") or "fp32",
                                      pooling=config.get("pooling") or "cls")
        self.objects = None
        self.coco: dict[str, list[dict]] | None = None
        objects = config.get("objects")
        if objects == "everything":
            from vfm.engine.tasks import LabelTask

            self.objects = LabelTask.from_config({"task": "everything", "segmenter": config["segmenter"],
                                                  "points_per_side": config.get("points_per_side") or 16,
                                                  "pred_iou_thresh": config.get("pred_iou_thresh"),
                                                  "stability_score_thresh": config.get("stability_score_thresh"),
                                                  "precision": config.get("precision") or "auto"}, device=device)
        elif objects:
            self.coco = read_coco_objects(objects)

    def __call__(self, items: list[tuple]) -> list[dict[str, Any]]:
        from vfm.io.image import load_image

        records, images, crops, owners = [], [], [], []
        for name, path, size, mtime_ns, known_sha in items:
            rec: dict[str, Any] = {"name": name, "path": path, "size": size, "mtime_ns": mtime_ns}
            records.append(rec)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                rec.update(status="error", error=f"'{name}' could not be read ({exc.strerror or exc})")
                continue
            rec["sha256"] = hashlib.sha256(data).hexdigest()
            if known_sha is not None and known_sha == rec["sha256"]:
                rec["status"] = "unchanged"
                continue
            try:
                image = load_image(data, name=name, max_pixels=self.config.get("max_pixels"))
                objects = self._objects(name, image)
            except VfmError as exc:
                rec.update(status="error", error=str(exc))
                continue
            rec.update(status="done", width=image.width, height=image.height, entries=[])
            images.append((rec, image.pixels))
            for obj in objects:
                crop = masked_crop(image.pixels, obj)
                if crop is not None:
                    crops.append(crop)
                    owners.append((rec, obj))
        if images:
            vecs = self.embedder.embed_images([px for _, px in images])
            for (rec, _), v in zip(images, vecs):
                rec["entries"].append({"kind": "image", "vector": v})
        if crops:
            vecs = self.embedder.embed_images(crops)
            for (rec, obj), v in zip(owners, vecs):
                rec["entries"].append({"kind": "object", "bbox": obj["bbox"], "rle": obj.get("segmentation"),
                                       "category": obj.get("category"), "score": obj.get("score"), "vector": v})
        return records

    def _objects(self, name: str, image) -> list[dict]:
        if self.coco is not None:
            return self.coco.get(name, [])
        if self.objects is not None:
            from vfm.engine.tasks import to_result

            return to_result(self.objects.fn(image))["annotations"]
        return []


def masked_crop(pixels: np.ndarray, obj: dict[str, Any]) -> np.ndarray | None:
    """The object's bounding box cut out of the image, grey outside its mask; None if it is empty."""
    h, w = pixels.shape[:2]
    x, y, bw, bh = (float(v) for v in obj["bbox"])
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(w, int(np.ceil(x + bw))), min(h, int(np.ceil(y + bh)))
    if x1 <= x0 or y1 <= y0:
        return None
    crop = pixels[y0:y1, x0:x1].copy()
    rle = obj.get("segmentation")
    if isinstance(rle, dict) and "counts" in rle:
        from vfm.results.rle import decode_rle

        mask = decode_rle(rle)
        if mask.shape != (h, w):
            raise VfmError(f"an object's mask is {mask.shape[1]}x{mask.shape[0]} but its image is {w}x{h}; "
                           "the COCO file does not belong to these images")
        crop[~mask[y0:y1, x0:x1]] = GREY
    return crop


def read_coco_objects(path: str) -> dict[str, list[dict]]:
    """file_name -> annotations ({"bbox", "segmentation"?, "category", "score"?}) of a COCO instances file."""
    from vfm.errors import PromptError

    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise PromptError(f"--objects '{path}' cannot be read ({exc.strerror or exc}); give the coco.json of a vfm label run") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PromptError(f"--objects '{path}' is not JSON ({exc}); give a COCO instances file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations"), list):
        raise PromptError(f"--objects '{path}' is not a COCO instances file (needs 'images' and 'annotations' lists)")
    try:
        names = {img["id"]: str(img["file_name"]) for img in doc["images"]}
        sizes = {img["id"]: (img.get("height"), img.get("width")) for img in doc["images"]}
        cats = {c["id"]: str(c["name"]) for c in doc.get("categories", [])}
        out: dict[str, list[dict]] = {}
        for ann in doc["annotations"]:
            name = names.get(ann["image_id"])
            if name is None:
                continue
            bbox = [float(v) for v in ann["bbox"]]
            if len(bbox) != 4:
                raise ValueError("bbox")
            item = {"bbox": bbox, "category": cats.get(ann.get("category_id"), "object"), "score": ann.get("score")}
            seg = ann.get("segmentation")
            if isinstance(seg, dict) and "counts" in seg and "size" in seg:
                item["segmentation"] = seg
            elif isinstance(seg, list) and seg and all(sizes[ann["image_id"]]):  # polygons -> one RLE
                from pycocotools import mask as mask_utils

                from vfm.results.rle import encode_rle

                h, w = (int(v) for v in sizes[ann["image_id"]])
                polys = [[float(v) for v in p] for p in seg if isinstance(p, list) and len(p) >= 6]
                if polys:
                    item["segmentation"] = encode_rle(mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool))
            out.setdefault(name, []).append(item)
    except (KeyError, TypeError, ValueError) as exc:
        raise PromptError(f"--objects '{path}' has a malformed image or annotation ({exc!r} missing or wrong)") from None
    return out
