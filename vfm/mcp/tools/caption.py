"""caption: a caption of the image (Florence-2, BLIP or a chat VLM), as `vfm caption --json`."""

from __future__ import annotations

from vfm.mcp.tools._vlm import GENERATION, document, grounded, settings
from vfm.mcp.tools.base import IMAGE, Answer, ModelArg, Tool


async def run(args, ctx) -> Answer:
    image = await ctx.image(args["image"])
    detailed = bool(args.get("detailed"))
    kw = settings(args)
    answer = await ctx.models.run([ctx.model(args, "captioner")], lambda vlm: vlm.caption(image, detailed=detailed, **kw))
    overlay = await grounded(answer, image, args, ctx)
    return Answer(document(answer, image), overlay)


TOOL = Tool(
    name="caption",
    description="Describe the image in one sentence, or in detail with detailed=true (Florence-2, BLIP, or a chat "
                "VLM asked to describe it). Greedy by default: the same caption every call. Returns {\"answer\", "
                "\"model\", \"tokens\", \"seconds\"}; with ground=true also the caption's phrases as COCO-style "
                "annotations (box + mask, category = the phrase) and an overlay PNG.",
    arguments={"image": IMAGE,
               "detailed": {"type": "boolean", "description": "a detailed caption (a paragraph) instead of one sentence"},
               **GENERATION,
               "model": ModelArg("captioner", "the captioning model")},
    required=("image",),
    run=run,
)
