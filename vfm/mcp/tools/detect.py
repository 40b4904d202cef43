"""detect: boxes of named classes (open-vocabulary: Grounding DINO, OWLv2, ...), as `vfm detect --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import CLASSES, IMAGE, Answer, ModelArg, Tool, categories_of, classes, count, probability

THRESHOLDS = {
    "box_threshold": probability("keep boxes scoring above this (default 0.35 for Grounding DINO, 0.1 for OWL)"),
    "text_threshold": probability("Grounding DINO: a box's class words must score above this (default 0.25)"),
    "max_detections": count("keep only the K best-scoring boxes (default: all above the thresholds)", 1, 1000),
}


def thresholds(args) -> dict:
    return {"box_threshold": args.get("box_threshold"), "text_threshold": args.get("text_threshold"),
            "max_detections": None if args.get("max_detections") is None else int(args["max_detections"])}


async def run(args, ctx) -> Answer:
    names = classes(args)
    categories = categories_of(names)
    image = await ctx.image(args["image"])
    kw = thresholds(args)

    def work(det):
        return det.detect(image.pixels, names, **kw)

    result = await ctx.models.run([ctx.model(args, "detector")], work)
    from vfm.formats.coco import instances_to_document
    from vfm.formats.png import draw_overlay

    return Answer(instances_to_document(result, categories=categories, file_name=image.name or None),
                  draw_overlay(image.pixels, result, draw_boxes=True))


TOOL = Tool(
    name="detect",
    description="Open-vocabulary detection: boxes of the named classes. Returns a COCO-style document "
                "(categories in the order given; one annotation per box: bbox [x, y, w, h] in pixels, score, "
                "category_id/category_name) and an overlay PNG with the boxes drawn.",
    arguments={"image": IMAGE, "classes": CLASSES, **THRESHOLDS, "model": ModelArg("detector", "the detector")},
    required=("image", "classes"),
    run=run,
)
