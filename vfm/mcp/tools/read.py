"""read: the text in the image with its regions (Florence-2 OCR), as `vfm read --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import IMAGE, Answer, ModelArg, Tool, count
from vfm.models.vlm.defaults import MAX_NEW_TOKENS_LIMIT, READ_MAX_NEW_TOKENS


async def run(args, ctx) -> Answer:
    from vfm.cli.read_cmd import read_document
    from vfm.formats.png import draw_overlay

    image = await ctx.image(args["image"])
    n = int(args.get("max_new_tokens") or READ_MAX_NEW_TOKENS)
    result = await ctx.models.run([ctx.model(args, "captioner")], lambda vlm: vlm.read(image, max_new_tokens=n))
    return Answer(read_document(result, image.name or None), draw_overlay(image.pixels, result))


TOOL = Tool(
    name="read",
    description="Read the text in the image (OCR with regions, Florence-2): one annotation per text line, category "
                "= the text, bbox around the line and \"quad\" its quadrilateral (x1,y1,...,x4,y4 pixels); \"text\": "
                "the lines joined by newlines; and an overlay PNG with the boxes.",
    arguments={"image": IMAGE,
               "max_new_tokens": count(f"stop after this many new tokens (default {READ_MAX_NEW_TOKENS})", 1,
                                       MAX_NEW_TOKENS_LIMIT),
               "model": ModelArg("captioner", "the Florence-2 model")},
    required=("image",),
    run=run,
)
