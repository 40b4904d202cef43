"""`vfm ground IMAGE --classes "cat, remote control" [--detector M] [--segmenter M]` (Grounded-SAM).

Detects the named classes, then segments every box with a promptable segmenter in one batched
call: masks with class names, detection scores and boxes.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import add_output_options, add_runtime_options, out_dir, print_json, write_json
from vfm.cli.detect_cmd import DEFAULT_DETECTOR, add_class_options, read_class_option

DEFAULT_SEGMENTER = "sam-vit-base"


def add_parser(sub) -> None:
    p = sub.add_parser("ground", help="text -> masks: detect named classes, segment each box (Grounded-SAM)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="image file (JPEG, PNG, WebP, TIFF, BMP, GIF)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"detector alias, hub id or directory (default {DEFAULT_DETECTOR})")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, help=f"segmenter alias, hub id or directory (default {DEFAULT_SEGMENTER})")
    add_class_options(p)
    add_runtime_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.io.image import load_image
    from vfm.tasks.detect import check_threshold
    from vfm.tasks.ground import Grounder

    check_threshold(args.box_threshold, "--box-threshold")
    check_threshold(args.text_threshold, "--text-threshold")
    image = load_image(args.image, max_pixels=args.max_pixels)
    classes = read_class_option(args)
    grounder = Grounder.load(args.detector, args.segmenter, device=args.device, precision=args.precision)
    result = grounder.ground(image, classes, box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                             max_detections=args.max_detections)
    doc = instances_to_document(result, categories=classes)
    if args.out:
        from vfm.formats.png import draw_overlay, write_mask_pngs

        d = out_dir(args.out)
        write_mask_pngs(result, d)
        draw_overlay(image.pixels, result, draw_boxes=True).save(d / "overlay.png")
        write_json(d / "result.json", doc)
    if args.json:
        print_json(doc)
    elif not args.quiet:
        print(f"{len(result)} mask(s) for {image.width}x{image.height} image '{args.image}'")
        for i, ann in enumerate(doc["annotations"]):
            x, y, w, h = ann["bbox"]
            print(f"  [{i}] {ann['category_name']} score={ann['score']:.3f} area={int(ann['area'])} "
                  f"bbox(xywh)=({x:g}, {y:g}, {w:g}, {h:g})")
        if args.out:
            print(f"wrote {len(result)} mask PNG(s), overlay.png and result.json to {args.out}")
    return 0
