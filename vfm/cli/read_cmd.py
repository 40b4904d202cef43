"""`vfm read IMAGE... [--model florence-2-base] [--json] [--out DIR]`: OCR, the text with its regions.

Florence-2's OCR-with-regions: one instance per text line, named by its text, boxed by the
axis-aligned box around the line's quadrilateral (the quadrilateral itself is the annotation's
"quad": x1,y1,...,x4,y4 in pixels). Florence-2 gives no confidence, so every score is 1.
JSON: the COCO-style document (one category per distinct text) plus "text": the lines, in order,
joined by newlines. --out writes overlay.png and result.json.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import add_output_options, add_runtime_options
from vfm.cli.images import ImageRun, add_images_argument
from vfm.models.vlm.defaults import DEFAULT_READ_MODEL, READ_MAX_NEW_TOKENS


def add_parser(sub) -> None:
    p = sub.add_parser("read", help="read the text in images with its regions (OCR, Florence-2)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_READ_MODEL, help=f"Florence-2 alias, hub id or directory (default {DEFAULT_READ_MODEL})")
    p.add_argument("--max-new-tokens", type=int, default=READ_MAX_NEW_TOKENS, metavar="N",
                   help=f"stop after N new tokens (default {READ_MAX_NEW_TOKENS}; 9 per short line)")
    add_runtime_options(p)
    p.set_defaults(precision="fp32")
    add_output_options(p, masks=False)
    p.set_defaults(func=run)


def read_document(result, file_name: str | None = None) -> dict:
    from vfm.formats.coco import instances_to_document

    names = list(result.class_names or [])
    doc = instances_to_document(result, file_name=file_name, categories=list(dict.fromkeys(names)))
    for ann, quad in zip(doc["annotations"], result.data.get("quad", [])):
        ann["quad"] = quad
    doc["text"] = "\n".join(names)
    return doc


def run(args) -> int:
    from vfm.cli.images import emit_instances
    from vfm.models.vlm.generation import check_generation
    from vfm.tasks.vlm import VisionLanguage

    check_generation(args.max_new_tokens, None)
    images = ImageRun(args, "read")
    vlm = None
    for item, image in images:
        if vlm is None:
            vlm = VisionLanguage.load(args.model, task="read", device=args.device, precision=args.precision)
        result = vlm.read(image, max_new_tokens=args.max_new_tokens)
        emit_instances(args, images, item, image, result, read_document(result, item.name), noun="text line(s) in")
    return images.exit_code
