"""The per-image function of a labeling run, built from the run's options.

``LabelTask.from_config(config)`` loads the models once (each worker process / Ray actor does this
once); ``task(image_id, path)`` returns the record the state store keeps for that image::

    {"id", "status": "done", "width", "height", "result": '{"annotations": [...]}'}   # or "tags"
    {"id", "status": "error", "error": "<one sentence>"}                               # unreadable image

Annotations are JSON-ready dicts: ``category`` (class name), ``bbox`` (COCO XYWH, pixels), ``area``,
``score``, and ``segmentation`` (COCO compressed RLE) when the task makes masks.
"""

from __future__ import annotations

import json
import os
from typing import Any

from vfm.errors import PromptError, VfmError

TASKS = ("ground", "detect", "everything", "tag", "semantic", "instance", "boxes", "track")
DEFAULT_DETECTOR = "grounding-dino-tiny"
DEFAULT_SEGMENTER = "sam-vit-base"
DEFAULT_CLASSIFIER = "clip-vit-base-32"
DEFAULT_SEMANTIC_MODEL = "segformer-b0-ade"
DEFAULT_INSTANCE_MODEL = "mask2former-coco-instance"

#: Options that change results: stored in OUT and compared on every rerun.
CONFIG_KEYS = ("source", "task", "classes", "detector", "segmenter", "classifier", "box_threshold",
               "text_threshold", "tag_threshold", "points_per_side", "pred_iou_thresh", "stability_score_thresh",
               "precision", "max_pixels", "semantic_model", "boxes_from", "boxes_format", "tracker", "redetect_every",
               "match_iou", "stride", "backend")


def categories_for(config: dict[str, Any]) -> list[str]:
    """Dataset categories in id order (COCO id = position + 1, YOLO class = position).

    ``prompt: class`` entries of the class list name the class (vfm.tasks.ontology).
    """
    if config["task"] == "tag":
        return []
    if config["task"] == "boxes":
        return _box_prompts(config).categories
    if config["task"] == "semantic" or (config["task"] == "instance" and not config.get("classes")):
        return semantic_classes(config["semantic_model"])
    if config["task"] == "everything" and not config.get("classes"):
        return ["object"]
    if not config.get("classes"):
        return []
    from vfm.tasks.ontology import Ontology

    return list(Ontology.parse(config["classes"]).classes)


def _box_prompts(config: dict[str, Any]):
    from vfm.tasks.boxes_from import BoxPrompts

    src = config["source"]
    return BoxPrompts.load(config["boxes_from"], config.get("boxes_format"), source_root=src if os.path.isdir(src) else "")


def semantic_classes(name: str) -> list[str]:
    """The class names of a semantic checkpoint, in id order, from its config (no weights loaded)."""
    from vfm.models.registry import read_hub_json, resolve

    resolved = resolve(name, task="semantic")
    config = read_hub_json(resolved.source, "config.json", required=True, name=name)
    id2label = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    if not id2label:
        raise PromptError(f"model '{name}' names no classes (config.json has no id2label)")
    return [id2label[i] for i in sorted(id2label)]


def check_config(config: dict[str, Any]) -> None:
    task = config["task"]
    if task not in TASKS:
        raise PromptError(f"--task '{task}' is not one of {', '.join(TASKS)}")
    if task == "track" and not config.get("classes"):
        raise PromptError('--task track finds the objects to track by name: --classes "person, car" or --vocabulary FILE')
    if task in ("ground", "detect") and not config.get("classes"):
        raise PromptError(f'--task {task} needs the classes to find: --classes "person, forklift" or --vocabulary FILE')
    if task == "boxes" and not config.get("boxes_from"):
        raise PromptError("--task boxes takes its prompts from a dataset: --boxes-from COCO.json|YOLO/|VOC/|LABELME/")
    if task == "boxes" and config.get("classes"):
        raise PromptError("--boxes-from labels with the dataset's own classes; drop --classes/--vocabulary")
    if task == "semantic" and config.get("classes"):
        raise PromptError("--task semantic labels with the model's own classes; drop --classes/--vocabulary "
                          "(or use --task ground / everything for your own class names)")


class LabelTask:
    """Models loaded once; call it per image."""

    def __init__(self, config: dict[str, Any], fn):
        self.config = config
        self.fn = fn

    @classmethod
    def from_config(cls, config: dict[str, Any], device: str | None = None) -> "LabelTask":
        task = config["task"]
        classes = config.get("classes") or None
        seg_precision = config.get("precision") or "auto"
        backend = config.get("backend") or "torch"  # the segmenter's image encoder engine
        precision = "auto" if seg_precision == "int8" else seg_precision  # int8 exists for SAM's encoder only
        if task == "ground":
            from vfm.tasks.ground import Grounder

            grounder = Grounder.load(config["detector"], config["segmenter"], device=device, precision=precision,
                                     segmenter_precision=seg_precision, backend=backend)

            def fn(image):
                return grounder.ground(image, classes, box_threshold=config.get("box_threshold"),
                                       text_threshold=config.get("text_threshold"))
        elif task == "detect":
            from vfm.tasks.detect import Detector

            detector = Detector.load(config["detector"], device=device, precision=precision)

            def fn(image):
                return detector.detect(image.pixels, classes, box_threshold=config.get("box_threshold"),
                                       text_threshold=config.get("text_threshold"))
        elif task == "everything":
            try:
                from vfm.tasks.everything import MaskGenerator
            except ImportError:
                raise VfmError("--task everything needs vfm.tasks.everything (segment everything), "
                               "which this vfm does not have yet; use --task ground with --classes") from None
            from vfm.tasks.segment import Segmenter

            amg = {k: config[k] for k in ("pred_iou_thresh", "stability_score_thresh") if config.get(k) is not None}
            generator = MaskGenerator(Segmenter.load(config["segmenter"], device=device, precision=seg_precision,
                                                     backend=backend),
                                      points_per_side=config.get("points_per_side") or 32, **amg)
            labeler = None
            if classes:
                from vfm.tasks.label_masks import MaskLabeler

                labeler = MaskLabeler.load(config["classifier"], device=device)

            def fn(image):
                masks = generator.generate(image)
                if labeler is not None and len(masks):
                    return labeler.label(image, masks, classes)
                masks.class_names = ["object"] * len(masks)
                return masks
        elif task == "instance":
            from vfm.tasks.closed_classes import keep_classes, select_classes
            from vfm.tasks.semantic import SemanticModel

            model = SemanticModel.load(config["semantic_model"], device=device, precision=precision)
            selected = select_classes(model.class_names, classes, config["semantic_model"], task="segments")

            def fn(image):
                return keep_classes(model.instances(image, threshold=config.get("box_threshold")), selected)
        elif task == "boxes":
            from vfm.tasks.prompts import Prompt
            from vfm.tasks.segment import Segmenter

            prompts = _box_prompts(config)
            segmenter = Segmenter.load(config["segmenter"], device=device, precision=seg_precision, backend=backend)

            def fn(image):
                items = prompts.for_image(image.name)
                if not items:
                    from vfm.results.instances import Instances

                    return Instances.empty((image.height, image.width), labeled=True)
                boxes = [Prompt(box=[x0, y0, x1, y1]) for _, x0, y0, x1, y1 in items]
                for p in boxes:
                    p.check_inside(image.height, image.width)
                res = segmenter.predict_batch(boxes, image=image, return_logits=False)
                res.class_names = [c for c, *_ in items]
                return res
        elif task == "semantic":
            from vfm.tasks.semantic import SemanticModel

            model = SemanticModel.load(config["semantic_model"], device=device, precision=precision)

            def fn(image):
                return model.semantic(image).to_instances()
        else:
            from vfm.tasks.tag import Tagger

            tagger = Tagger.load(config["classifier"], device=device, vocabulary=classes)

            def fn(image):
                return tagger.tag(image, threshold=config.get("tag_threshold"))
        return cls(config, fn)

    def __call__(self, image_id: int, path: str) -> dict[str, Any]:
        from vfm.io.image import load_image

        try:
            image = load_image(path, max_pixels=self.config.get("max_pixels"), name=path)
        except VfmError as exc:
            return {"id": image_id, "status": "error", "error": str(exc)}
        try:
            out = self.fn(image)
        except VfmError as exc:
            return {"id": image_id, "status": "error", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop a 10M-image run
            msg = (str(exc).strip().splitlines() or [""])[0]
            return {"id": image_id, "status": "error", "internal": True,
                    "error": f"internal error on '{path}': {type(exc).__name__}: {msg}"}
        result = to_result(out)
        return {"id": image_id, "status": "done", "width": image.width, "height": image.height,
                "result": json.dumps(result, separators=(",", ":"))}


def to_result(out) -> dict[str, Any]:
    """``Instances`` -> {"annotations": [...]}; ``Labels`` -> {"tags": [...]}."""
    from vfm.results.labels import Labels

    if isinstance(out, Labels):
        return {"tags": out.to_json()["labels"]}
    from vfm.formats.coco import instances_to_annotations

    anns = []
    for ann in instances_to_annotations(out):
        item = {"category": ann.get("category_name", "object"), "bbox": ann["bbox"], "area": ann["area"],
                "score": ann["score"]}
        if "segmentation" in ann:
            item["segmentation"] = ann["segmentation"]
        anns.append(item)
    return {"annotations": anns}
