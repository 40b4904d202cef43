"""`vfm ground IMAGE... --classes "cat, remote control" [--detector M] [--segmenter M]` (Grounded-SAM).

`--segmenter sam3` needs no detector: SAM 3 finds every instance of each class by itself
(`--box-threshold` is its score threshold, default 0.5).

Detects the named classes, then segments every box with a promptable segmenter in one batched
call: masks with class names, detection scores and boxes. `--classes "person: astronaut"` asks
for "person" and names the masks "astronaut". Several images (files, folders, globs) give one
JSON document per image (JSON Lines).
"""

from __future__ import annotations

import argparse

from vfm.cli.common import add_output_options, add_runtime_options
from vfm.cli.detect_cmd import DEFAULT_DETECTOR, add_class_options, categories_of, read_class_option
from vfm.cli.images import ImageRun, add_images_argument, emit_instances

DEFAULT_SEGMENTER = "sam-vit-base"


def add_parser(sub) -> None:
    p = sub.add_parser("ground", help="text -> masks: detect named classes, segment each box (Grounded-SAM)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--detector", default=None, help=f"detector alias, hub id or directory (default {DEFAULT_DETECTOR}; "
                                                    "none with a SAM 3 --segmenter)")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER,
                   help=f"segmenter alias, hub id or directory (default {DEFAULT_SEGMENTER}); sam3: text -> masks without a detector")
    add_class_options(p)
    add_runtime_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.detect import check_threshold
    from vfm.tasks.ground import Grounder

    check_threshold(args.box_threshold, "--box-threshold")
    check_threshold(args.text_threshold, "--text-threshold")
    classes = read_class_option(args)
    categories = categories_of(classes)
    images = ImageRun(args, "ground")
    grounder = None
    for item, image in images:
        if grounder is None:
            grounder = Grounder.load(args.detector, args.segmenter, device=args.device, precision=args.precision)
        result = grounder.ground(image, classes, box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                                 max_detections=args.max_detections)
        doc = instances_to_document(result, categories=categories, file_name=item.name)
        emit_instances(args, images, item, image, result, doc)
    return images.exit_code
