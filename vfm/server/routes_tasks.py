"""Tasks on an uploaded image: detect, ground (text → masks), classify, tag, everything."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vfm.server.parsing import check_count, check_fields, optional_string, names, optional_int, optional_number, read_json

router = APIRouter(prefix="/v1/images/{image_id}", tags=["tasks"])


def _labels_doc(stored, labels, model: str) -> dict:
    doc = {"image": {"width": stored.image.width, "height": stored.image.height}}
    if stored.file_name:
        doc["image"]["file_name"] = stored.file_name
    doc.update(labels.to_json())
    doc["model"] = model
    return doc


@router.post("/detect", summary="Boxes of the given classes (Grounding DINO / OWL)")
async def detect(image_id: str, request: Request):
    """Body ``{"classes": "cat, dog" | [...], "box_threshold"?, "text_threshold"?}`` → `vfm detect --json`."""
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.classes import parse_classes
    from vfm.tasks.ontology import Ontology

    body = await read_json(request)
    check_fields(body, ("classes", "box_threshold", "text_threshold"))
    stored = request.app.state.store.get(image_id)
    raw = names(body, "classes")
    check_count(len(raw) if isinstance(raw, list) else 0, request.app.state.config.max_classes, "classes", "--max-classes")
    classes = parse_classes(raw)
    categories = list(Ontology.parse(classes).classes)  # "prompt: class" entries name the class
    check_count(len(classes), request.app.state.config.max_classes, "classes", "--max-classes")
    bt, tt = optional_number(body, "box_threshold"), optional_number(body, "text_threshold")
    result = await request.app.state.models.detector.run(
        lambda det: det.detect(stored.image.pixels, classes, box_threshold=bt, text_threshold=tt))
    return instances_to_document(result, categories=categories)


@router.post("/ground", summary="Masks of the given classes (detector boxes → segmenter)")
async def ground(image_id: str, request: Request):
    """Body ``{"classes": ..., "box_threshold"?, "text_threshold"?}`` → `vfm ground --json`."""
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.classes import parse_classes
    from vfm.tasks.ontology import Ontology

    body = await read_json(request)
    check_fields(body, ("classes", "box_threshold", "text_threshold"))
    stored = request.app.state.store.get(image_id)
    raw = names(body, "classes")
    check_count(len(raw) if isinstance(raw, list) else 0, request.app.state.config.max_classes, "classes", "--max-classes")
    classes = parse_classes(raw)
    categories = list(Ontology.parse(classes).classes)  # "prompt: class" entries name the class
    check_count(len(classes), request.app.state.config.max_classes, "classes", "--max-classes")
    bt, tt = optional_number(body, "box_threshold"), optional_number(body, "text_threshold")
    result = await request.app.state.models.grounder.run(
        lambda g: g.ground(stored.image, classes, box_threshold=bt, text_threshold=tt))
    return instances_to_document(result, categories=categories)


@router.post("/classify", summary="Zero-shot scores of the given labels (CLIP softmax / SigLIP sigmoid)")
async def classify(image_id: str, request: Request):
    """Body ``{"labels": "cat, dog" | [...], "template"?, "top_k"?}`` → `vfm classify --json`."""
    from vfm.tasks.classes import parse_classes
    from vfm.tasks.classify import DEFAULT_TEMPLATE, check_template
    from vfm.tasks.tag import check_top_k

    body = await read_json(request)
    check_fields(body, ("labels", "template", "top_k"))
    stored = request.app.state.store.get(image_id)
    raw = names(body, "labels")
    check_count(len(raw) if isinstance(raw, list) else 0, request.app.state.config.max_classes, "labels", "--max-classes")
    labels = parse_classes(raw, what="label list")
    check_count(len(labels), request.app.state.config.max_classes, "labels", "--max-classes")
    template = check_template(optional_string(body, "template") or DEFAULT_TEMPLATE)
    top_k = check_top_k(optional_int(body, "top_k"))
    result = await request.app.state.models.classifier.run(
        lambda clf: clf.classify(stored.image, labels, template=template).top(top_k))
    return _labels_doc(stored, result, request.app.state.config.classifier)


@router.post("/tag", summary="Tags from the built-in vocabulary")
async def tag(image_id: str, request: Request):
    """Body ``{"threshold"?, "top_k"?}`` (optional) → `vfm tag --json`."""
    from vfm.tasks.tag import check_threshold, check_top_k

    body = await read_json(request, optional=True)
    check_fields(body, ("threshold", "top_k"))
    stored = request.app.state.store.get(image_id)
    threshold = check_threshold(optional_number(body, "threshold"))
    top_k = check_top_k(optional_int(body, "top_k"))
    holder = request.app.state.models.tagger

    def work(tagger):
        labels = tagger.tag(stored.image, threshold=threshold, top_k=top_k)
        return labels, tagger.default_threshold if threshold is None else threshold

    labels, used = await holder.run(work)
    doc = _labels_doc(stored, labels, request.app.state.config.classifier)
    doc["threshold"] = used
    return doc


@router.post("/everything", summary="Every object's mask (automatic mask generation)")
async def everything(image_id: str, request: Request):
    """Body ``{"points_per_side"?, "crop_n_layers"?, "pred_iou_thresh"?, "stability_score_thresh"?,
    "min_mask_region_area"?}`` (optional) → `vfm everything --json`. ``points_per_side`` and
    ``crop_n_layers`` are capped by the server (422 above the cap); the work stops at its next point
    batch when the client disconnects or the server shuts down."""
    from vfm.formats.coco import instances_to_document
    from vfm.server.cancel import cancellable

    config = request.app.state.config
    body = await read_json(request, optional=True)
    check_fields(body, ("points_per_side", "crop_n_layers", "pred_iou_thresh", "stability_score_thresh",
                        "min_mask_region_area"))
    stored = request.app.state.store.get(image_id)
    options = {k: optional_int(body, k) for k in ("points_per_side", "crop_n_layers", "min_mask_region_area")}
    options.update({k: optional_number(body, k) for k in ("pred_iou_thresh", "stability_score_thresh")})
    options = {k: v for k, v in options.items() if v is not None}
    if options.get("points_per_side") is not None:
        check_count(options["points_per_side"], config.max_points_per_side, "points per side", "--max-points-per-side")
    from vfm.tasks.thresholds import check_threshold

    check_threshold(options.get("stability_score_thresh"), "stability_score_thresh")
    if options.get("crop_n_layers") is not None:
        check_count(options["crop_n_layers"], config.max_crop_layers, "crop layers", "--max-crop-layers")
    holder = request.app.state.models.everything

    async with cancellable(request) as check:
        def work(gen):
            gen = type(gen)(gen.segmenter, progress=check, **options)
            return gen.generate(stored.image)

        result = await holder.run(work)
    return instances_to_document(result)
