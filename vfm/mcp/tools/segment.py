"""segment: masks for clicks and boxes (SAM, SAM-HQ, SAM 2), as `vfm segment --point/--box --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import BOX, IMAGE, POINT, Answer, ModelArg, Tool, require_one


async def run(args, ctx) -> Answer:
    import numpy as np

    from vfm.errors import PromptError
    from vfm.tasks.prompts import Prompt

    require_one("segment", args, "points", "box", "boxes")
    image = await ctx.image(args["image"])
    points = args.get("points") or None
    labels = args.get("labels")
    if labels is not None and points is None:
        raise PromptError("segment: 'labels' given without 'points'; give one label per point")
    if points is not None and labels is not None and len(labels) != len(points):
        raise PromptError(f"segment: {len(points)} points but {len(labels)} labels; give one label (1 or 0) per point")
    xy = np.array(points, dtype=np.float64) if points else None
    lab = np.array(labels if labels is not None else [1] * len(points or []), dtype=np.int64) if points else None
    boxes = ([args["box"]] if args.get("box") else []) + list(args.get("boxes") or [])
    prompts = [Prompt(points=xy, labels=lab, box=b) for b in boxes] or [Prompt(points=xy, labels=lab)]
    for p in prompts:  # before any model is loaded
        p.check_inside(image.height, image.width)
    multimask = bool(args.get("multimask", False))

    def work(seg):
        return seg.predict_batch(prompts, multimask=multimask, image=image, return_logits=False)

    result = await ctx.models.run([ctx.model(args, "segmenter")], work)
    from vfm.formats.coco import instances_to_document
    from vfm.formats.png import draw_overlay

    shown = [(x, y, int(v)) for (x, y), v in zip(points or [], lab if lab is not None else [])]
    overlay = draw_overlay(image.pixels, result, points=shown, prompt_boxes=boxes, draw_boxes=False)
    return Answer(instances_to_document(result, file_name=image.name or None), overlay)


TOOL = Tool(
    name="segment",
    description="Masks of the objects at given clicks and/or boxes (SAM family). All points and 'box' form one "
                "prompt; each of 'boxes' is its own prompt with the same points. Returns a COCO-style document "
                "(one annotation per mask: RLE segmentation, bbox [x, y, w, h], area, score = predicted IoU) "
                "and an overlay PNG.",
    arguments={
        "image": IMAGE,
        "points": {"type": "array", "items": POINT, "maxItems": 256,
                   "description": "clicks, each [x, y] in image pixels"},
        "labels": {"type": "array", "items": {"type": "integer", "enum": [0, 1]}, "maxItems": 256,
                   "description": "one per point: 1 on the object (default), 0 not on it"},
        "box": dict(BOX, description="a box around the object, [x0, y0, x1, y1] in image pixels"),
        "boxes": {"type": "array", "items": BOX, "maxItems": 256,
                  "description": "several boxes, one mask each"},
        "multimask": {"type": "boolean", "description": "three candidate masks per prompt instead of one (default false)"},
        "model": ModelArg("segmenter", "the segmenter"),
    },
    required=("image",),
    run=run,
)
