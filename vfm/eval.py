"""COCO evaluation of predictions against ground truth (pycocotools COCOeval), categories matched by name.

    table = evaluate("gt.json", "pred.json", iou_type="segm")   # -> EvalResult(stats, table text)

``pred`` may be a full COCO dataset (as `vfm label` writes: images, categories, annotations with
scores), the single-image documents of ``vfm detect|ground|everything|segment --json`` (one, a JSON
list of them, or JSON Lines with one per line; each names its image in ``image.file_name`` and its
classes in ``category_name``), or a plain COCO results list (``[{"image_id", "category_id", "bbox"/"segmentation", "score"}]``,
whose category ids are then taken as GT ids). Prediction categories are re-mapped to the GT ids of
the same name (case-insensitive); prediction images to GT images by ``file_name`` (falling back to
ids). Predictions of categories or images the GT does not have are dropped and counted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from typing import Any

from vfm.errors import VfmError

STAT_NAMES = (
    "AP @[IoU=0.50:0.95 | area=all | maxDets=100]", "AP @[IoU=0.50 | area=all | maxDets=100]",
    "AP @[IoU=0.75 | area=all | maxDets=100]", "AP @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "AP @[IoU=0.50:0.95 | area=medium | maxDets=100]", "AP @[IoU=0.50:0.95 | area=large | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=1]", "AR @[IoU=0.50:0.95 | area=all | maxDets=10]",
    "AR @[IoU=0.50:0.95 | area=all | maxDets=100]", "AR @[IoU=0.50:0.95 | area=small | maxDets=100]",
    "AR @[IoU=0.50:0.95 | area=medium | maxDets=100]", "AR @[IoU=0.50:0.95 | area=large | maxDets=100]",
)


class EvalError(VfmError):
    """Ground truth and predictions cannot be compared."""


@dataclass
class EvalResult:
    stats: list[float]
    table: str
    matched_images: int
    dropped: dict[str, int]
    per_category: dict[str, float]


def _load(path: str | os.PathLike, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise EvalError(f"{what} file '{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalError(f"{what} file '{path}' is not valid JSON ({exc})") from None


def _load_predictions(path: str | os.PathLike) -> Any:
    """JSON, or JSON Lines of single-image documents (what ``vfm detect a.jpg b.jpg --json`` prints)."""
    try:
        return _load(path, "prediction")
    except EvalError as first:
        try:
            with open(path, encoding="utf-8") as fh:
                docs = [json.loads(line) for line in fh if line.strip()]
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            docs = None
        if docs and all(_is_image_document(d) for d in docs):
            return docs
        raise first from None


def _is_image_document(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("image"), dict) and "annotations" in doc


def documents_to_dataset(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Single-image documents -> one COCO dataset (image ids 1.. in order, categories by name)."""
    images, annotations, categories = [], [], {}
    for image_id, doc in enumerate(docs, start=1):
        info = doc["image"]
        if not info.get("file_name"):
            raise EvalError(f"prediction document {image_id} has no image.file_name to match with the GT; "
                            "make it with this vfm's --json (it names the image)")
        images.append({"id": image_id, "file_name": info["file_name"], "width": info.get("width"),
                       "height": info.get("height")})
        names = {c["id"]: c["name"] for c in doc.get("categories", [])}
        for ann in doc["annotations"]:
            name = ann.get("category_name", names.get(ann.get("category_id")))
            item = {k: v for k, v in ann.items() if k not in ("id", "category_name", "prompt")}
            item["image_id"] = image_id
            if name is None:
                item["category_id"] = None  # no class: dropped as a category the GT does not have
            else:
                item["category_id"] = categories.setdefault(name, len(categories) + 1)
            annotations.append(item)
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in categories.items()]}


def _norm(name: str) -> str:
    return " ".join(str(name).lower().split())


def align_predictions(gt: dict[str, Any], pred: Any) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """Prediction annotations with GT image and category ids; (results, matched images, dropped counts)."""
    if not isinstance(gt, dict) or "annotations" not in gt or "images" not in gt:
        raise EvalError("the GT file is not a COCO dataset (needs 'images', 'annotations' and 'categories')")
    gt_cat_by_name = {_norm(c["name"]): c["id"] for c in gt.get("categories", [])}
    gt_cat_ids = {c["id"] for c in gt.get("categories", [])}
    gt_img_by_name = {img.get("file_name"): img["id"] for img in gt["images"] if img.get("file_name")}
    gt_img_ids = {img["id"] for img in gt["images"]}
    dropped = {"category": 0, "image": 0}
    if _is_image_document(pred):
        pred = [pred]
    if isinstance(pred, list) and pred and all(_is_image_document(d) for d in pred):
        pred = documents_to_dataset(pred)
    if isinstance(pred, dict):
        if "annotations" not in pred:
            raise EvalError("the prediction file is neither a COCO dataset (with 'annotations') nor a results list")
        cat_map = {}
        for c in pred.get("categories", []):
            if _norm(c["name"]) in gt_cat_by_name:
                cat_map[c["id"]] = gt_cat_by_name[_norm(c["name"])]
        img_map = {}
        for img in pred.get("images", []):
            if img.get("file_name") in gt_img_by_name:
                img_map[img["id"]] = gt_img_by_name[img["file_name"]]
            elif not gt_img_by_name and img["id"] in gt_img_ids:
                img_map[img["id"]] = img["id"]
        if not img_map:  # no shared file names: fall back to shared ids
            img_map = {img["id"]: img["id"] for img in pred.get("images", []) if img["id"] in gt_img_ids}
        anns = pred["annotations"]
    elif isinstance(pred, list):
        cat_map = {cid: cid for cid in gt_cat_ids}
        img_map = {a["image_id"]: a["image_id"] for a in pred if a.get("image_id") in gt_img_ids}
        anns = pred
    else:
        raise EvalError("the prediction file is neither a COCO dataset nor a results list")
    if not img_map:
        raise EvalError("GT and predictions share no images (by file_name or id); check that both describe the same images")
    out = []
    for ann in anns:
        if ann.get("image_id") not in img_map:
            dropped["image"] += 1
            continue
        if ann.get("category_id") not in cat_map:
            dropped["category"] += 1
            continue
        item = {k: v for k, v in ann.items() if k not in ("id", "area", "iscrowd")}
        item["image_id"] = img_map[ann["image_id"]]
        item["category_id"] = cat_map[ann["category_id"]]
        item.setdefault("score", 1.0)
        out.append(item)
    return out, len(set(img_map.values())), dropped


def evaluate(gt_path: str | os.PathLike, pred_path: str | os.PathLike, iou_type: str = "segm") -> EvalResult:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("segm", "bbox"):
        raise EvalError(f"--iou-type must be segm or bbox, got '{iou_type}'")
    gt_doc = _load(gt_path, "GT")
    pred_doc = _load_predictions(pred_path)
    results, n_images, dropped = align_predictions(gt_doc, pred_doc)
    if iou_type == "segm":
        if any("segmentation" not in a for a in gt_doc["annotations"]):
            raise EvalError("some GT annotations have no 'segmentation'; use --iou-type bbox")
        missing = sum(1 for r in results if "segmentation" not in r)
        if missing:
            raise EvalError(f"{missing} predictions have no 'segmentation' (boxes only); use --iou-type bbox")
    else:
        results = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
    gt_doc.setdefault("info", {})
    gt_doc.setdefault("licenses", [])
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_doc
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        if not results:
            dt.dataset = {"images": gt_doc["images"], "categories": gt_doc.get("categories", []), "annotations": []}
            dt.createIndex()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_category = {}
    precision = ev.eval["precision"]  # T x R x K x A x M
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        per_category[gt.cats[cat_id]["name"]] = float(p.mean()) if p.size else float("nan")
    table = "\n".join(line for line in buf.getvalue().splitlines() if line.lstrip().startswith("Average"))
    return EvalResult([float(s) for s in ev.stats], table, n_images, dropped, per_category)
