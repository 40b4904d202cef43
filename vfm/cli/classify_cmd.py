"""`vfm classify IMAGE... --model M --classes "a, b, c" [--template "a photo of a {}."] [--top-k K] --json`.

Zero-shot classification (`--labels` is the same option as `--classes`); closed-set classifiers
(ViT, ConvNeXt, Swin, EfficientNet, ResNet, Perceiver, any image-classification checkpoint) score
their own labels without --classes (top 5 by default), as transformers' image-classification pipeline. `"prompt: label"` entries
score the prompt and report the label; a label named by several prompts gets their total (softmax)
or best score (sigmoid). Several images (files, folders, globs) give one document per image. CLIP models give a softmax over the labels (scores sum to 1); SigLIP
models give an independent sigmoid per label, sigmoid(logit_scale * cosine + logit_bias), which do
not sum to 1. JSON: {"image": {"width", "height", "file_name"}, "labels": [{"name", "score"}...],
"activation": "softmax"|"sigmoid", "model": M}, labels sorted by score.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import add_output_options, add_runtime_options, print_json, write_json
from vfm.cli.images import ImageRun, add_images_argument
from vfm.errors import PromptError

DEFAULT_MODEL = "clip-vit-base-32"


def add_parser(sub) -> None:
    p = sub.add_parser("classify", help="zero-shot image classification with CLIP or SigLIP",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"CLIP/SigLIP alias, hub id or local directory (default {DEFAULT_MODEL})")
    p.add_argument("--classes", "--labels", dest="labels", default=None, metavar="CLASSES",
                   help='class names separated by commas, e.g. "cat, dog, remote control" (--labels is the same); '
                        "optional for closed-set classifiers (ViT, ConvNeXt, ...), where it keeps only those labels")
    p.add_argument("--template", default="a photo of a {}.",
                   help='prompt template with {} where the label goes (default "a photo of a {}.")')
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="print only the K best labels (default all; 5 for a closed-set classifier without --classes)")
    add_runtime_options(p)
    fp32_by_default(p)
    add_output_options(p, masks=False, coco=False)
    p.set_defaults(func=run)


def fp32_by_default(p: argparse.ArgumentParser) -> None:
    """Scores default to fp32 (they then equal the reference model call); bf16 stays available."""
    p.set_defaults(precision="fp32")
    for action in p._actions:
        if action.dest == "precision":
            action.help = "model precision (default fp32, scores equal transformers' own forward; bf16/fp16 are for GPUs, bf16 autocast is slower on CPU)"


def check_top_k(k: int | None) -> int | None:
    if k is not None and k < 1:
        raise PromptError(f"--top-k {k} must be at least 1")
    return k


def labels_document(image, labels, model: str) -> dict:
    doc = {"image": {"width": image.width, "height": image.height, "file_name": image.name}}
    doc.update(labels.to_json())
    doc["model"] = model
    return doc


def draw_labels(pixels, labels):
    """The image with a box of "name score" lines in the top-left corner."""
    from PIL import Image, ImageDraw

    out = Image.fromarray(pixels)
    draw = ImageDraw.Draw(out)
    y = 2
    for name, score in zip(labels.names, labels.scores):
        text = f"{name} {score:.2f}"
        box = draw.textbbox((4, y), text)
        draw.rectangle(box, fill=(255, 255, 255))
        draw.text((4, y), text, fill=(0, 0, 0))
        y = box[3] + 2
    return out


def write_outputs(d, image, labels, doc) -> None:
    draw_labels(image.pixels, labels.top(10)).save(d / "overlay.png")
    write_json(d / "result.json", doc)


def emit(args, images: ImageRun, item, image, labels, doc, what: str) -> None:
    """--out files, --json document or the text listing of one image."""
    d = images.out_dir(item)
    if d is not None:
        write_outputs(d, image, labels, doc)
    if args.json:
        print_json(doc)
        return
    if args.quiet:
        return
    print(f"{what} for {image.width}x{image.height} image '{item.path}' ({labels.activation}):")
    for name, score in zip(labels.names, labels.scores):
        print(f"  {score:.4f}  {name}")
    if d is not None:
        print(f"wrote overlay.png and result.json to {d}")


def run(args) -> int:
    from vfm.tasks.classify import Classifier, check_template
    from vfm.tasks.ontology import Ontology

    top_k = check_top_k(args.top_k)
    template = check_template(args.template)
    from vfm.models.registry import resolve

    names = args.labels
    closed = resolve(args.model, task="classify").family == "image-classifier"
    if names is None and not closed:
        raise PromptError('give the classes to score with --classes "cat, dog, remote control" (closed-set classifiers '
                          "such as vit-base-patch16-224 score their own labels without it)")
    if names is not None:
        Ontology.parse(names, what="class list")  # a malformed list fails before the model loads
    if closed and names is None and top_k is None:
        top_k = 5
    images = ImageRun(args, "classify")
    clf = None
    for item, image in images:
        if clf is None:
            if closed:
                from vfm.tasks.closed_classify import ImageClassifier

                clf = ImageClassifier.load(args.model, device=args.device, precision=args.precision)
            else:
                clf = Classifier.load(args.model, device=args.device, precision=args.precision)
        labels = clf.classify(image, names, template=template).top(top_k)
        emit(args, images, item, image, labels, labels_document(image, labels, args.model), "labels")
    return images.exit_code
