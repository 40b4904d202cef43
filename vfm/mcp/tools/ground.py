"""ground: text -> boxes and masks (a detector's boxes segmented by SAM; Grounded-SAM), as `vfm ground --json`.
A SAM 3 segmenter finds the classes by itself (no detector)."""

from __future__ import annotations

from vfm.mcp.tools.base import CLASSES, IMAGE, Answer, ModelArg, Tool, categories_of, classes
from vfm.mcp.tools.detect import THRESHOLDS, thresholds


async def run(args, ctx) -> Answer:
    from vfm.models.registry import is_concept_model

    names = classes(args)
    categories = categories_of(names)
    image = await ctx.image(args["image"])
    kw = thresholds(args)
    _, segmenter = ctx.model(args, "segmenter", "segmenter")
    if is_concept_model(segmenter):
        def work(concept):
            return concept.ground(image, names, **kw)

        result = await ctx.models.run([("concept", segmenter)], work)
    else:
        from vfm.tasks.ground import Grounder

        def work(det, seg):
            return Grounder(det, seg).ground(image, names, **kw)

        result = await ctx.models.run([ctx.model(args, "detector", "detector"), ("segmenter", segmenter)], work)
    from vfm.formats.coco import instances_to_document
    from vfm.formats.png import draw_overlay

    return Answer(instances_to_document(result, categories=categories, file_name=image.name or None),
                  draw_overlay(image.pixels, result))


TOOL = Tool(
    name="ground",
    description="Text to masks: the detector finds boxes of the named classes and the segmenter turns each box "
                "into a mask (Grounded-SAM). Returns a COCO-style document (one annotation per object: RLE "
                "segmentation, bbox, area, detection score, category) and an overlay PNG.",
    arguments={"image": IMAGE, "classes": CLASSES, **THRESHOLDS,
               "detector": ModelArg("detector", "the detector that finds the boxes"),
               "segmenter": ModelArg("segmenter", "the segmenter that masks them (a SAM 3 model needs no detector)")},
    required=("image", "classes"),
    run=run,
)
