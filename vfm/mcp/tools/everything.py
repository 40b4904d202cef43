"""everything: every object's mask (SAM's automatic mask generator), as `vfm everything --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import IMAGE, Answer, ModelArg, Tool, count, probability

#: Generator parameters the agent may set (SamAutomaticMaskGenerator's names and defaults).
OPTIONS = ("points_per_side", "pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_n_layers",
           "min_mask_region_area")


async def run(args, ctx) -> Answer:
    from vfm.tasks.everything import MaskGenerator

    options = {k: args[k] for k in OPTIONS if args.get(k) is not None}
    for k in ("points_per_side", "crop_n_layers", "min_mask_region_area"):
        if k in options:
            options[k] = int(options[k])
    MaskGenerator(None, **options)  # its own checks, before the image is read or the model loaded
    image = await ctx.image(args["image"])

    def work(seg):
        return MaskGenerator(seg, **options).generate(image)

    result = await ctx.models.run([ctx.model(args, "segmenter")], work)
    from vfm.formats.coco import instances_to_document
    from vfm.formats.png import draw_overlay

    return Answer(instances_to_document(result, file_name=image.name or None),
                  draw_overlay(image.pixels, result, draw_boxes=False))


TOOL = Tool(
    name="everything",
    description="Segment everything: a mask for every object and part SAM finds on a grid of points, no prompt "
                "needed. Returns a COCO-style document (RLE masks, boxes, predicted IoU scores, "
                "stability scores) and an overlay PNG.",
    arguments={
        "image": IMAGE,
        "points_per_side": count("N: an N x N grid of points (default 32; more finds smaller objects, slower)", 1, 64),
        "pred_iou_thresh": {"type": "number", "description": "keep masks whose predicted IoU is above this (default 0.88)"},
        "stability_score_thresh": probability("keep masks whose stability score is at least this (default 0.95)"),
        "box_nms_thresh": probability("box IoU above which overlapping masks are merged by NMS (default 0.7)"),
        "crop_n_layers": count("layers of image crops for small objects, 0 for none (default 0)", 0, 2),
        "min_mask_region_area": count("remove holes and islands smaller than this many pixels (default 0: off)", 0),
        "model": ModelArg("segmenter", "the segmenter"),
    },
    required=("image",),
    run=run,
)
