"""tag: tags from vfm's built-in vocabulary of 1,000+ objects, scenes and attributes, as `vfm tag --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import IMAGE, Answer, ModelArg, Tool, count, probability

DEFAULT_TOP_K = 20


async def run(args, ctx) -> Answer:
    from vfm.tasks.tag import check_threshold, check_top_k

    threshold = check_threshold(args.get("threshold"))
    top_k = check_top_k(args.get("top_k", DEFAULT_TOP_K))
    image = await ctx.image(args["image"])
    key = ctx.model(args, "classifier")

    def work(clf):
        from vfm.tasks.tag import Tagger

        tagger = ctx.models.memo(("tagger", key[1]), lambda: Tagger(clf))  # the vocabulary's text embeddings, once
        labels = tagger.tag(image, threshold=threshold, top_k=top_k)
        return labels, tagger.default_threshold if threshold is None else threshold

    labels, used = await ctx.models.run([key], work)
    from vfm.cli.classify_cmd import draw_labels, labels_document

    doc = labels_document(image, labels, key[1])
    if not image.name:  # base64 data has no file name
        del doc["image"]["file_name"]
    doc["threshold"] = used
    return Answer(doc, draw_labels(image.pixels, labels.top(10)))


TOOL = Tool(
    name="tag",
    description="Tags for an image from vfm's built-in vocabulary (over 1,000 common objects, scenes and "
                "attributes), each scored on its own in 0..1. Returns {\"image\", \"labels\": [{\"name\", "
                "\"score\"}] best first, \"activation\", \"model\", \"threshold\"} and the image with the top tags "
                "written on it.",
    arguments={
        "image": IMAGE,
        "threshold": probability("keep tags scoring at least this (default 0.5 for CLIP, 0.1 for SigLIP)"),
        "top_k": count(f"at most K tags, best first (default {DEFAULT_TOP_K})", 1, 1000),
        "model": ModelArg("classifier", "the CLIP / SigLIP model"),
    },
    required=("image",),
    run=run,
)
