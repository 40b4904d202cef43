"""classify: zero-shot scores of given labels (CLIP softmax / SigLIP sigmoid), as `vfm classify --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import CLASSES, IMAGE, Answer, ModelArg, Tool, classes, count


async def run(args, ctx) -> Answer:
    from vfm.tasks.classify import check_template

    labels = classes(args, what="label list")
    template = check_template(args.get("template"))
    top_k = None if args.get("top_k") is None else int(args["top_k"])
    image = await ctx.image(args["image"])
    key = ctx.model(args, "classifier")

    def work(clf):
        return clf.classify(image, labels, template=template).top(top_k)

    result = await ctx.models.run([key], work)
    from vfm.cli.classify_cmd import draw_labels, labels_document

    doc = labels_document(image, result, key[1])
    if not image.name:  # base64 data has no file name
        del doc["image"]["file_name"]
    return Answer(doc, draw_labels(image.pixels, result.top(10)))


TOOL = Tool(
    name="classify",
    description="Zero-shot classification: how well each of the given labels describes the image. CLIP models "
                "give a softmax over the labels (scores sum to 1), SigLIP an independent sigmoid per label. "
                'Returns {"image", "labels": [{"name", "score"}] best first, "activation", "model"} and the '
                "image with the top labels written on it.",
    arguments={
        "image": IMAGE,
        "classes": dict(CLASSES, description='the labels to score, e.g. ["cat", "dog", "remote control"]; '
                                             '"prompt: label" scores the prompt and reports the label'),
        "template": {"type": "string", "description": 'prompt template with {} where the label goes '
                                                       '(default "a photo of a {}.")'},
        "top_k": count("return only the K best labels (default all)", 1),
        "model": ModelArg("classifier", "the CLIP / SigLIP model"),
    },
    required=("image", "classes"),
    run=run,
)
