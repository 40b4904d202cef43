"""`vfm semantic IMAGE... --model M [--out DIR] [--json]`: a class for every pixel.

Closed-set semantic segmentation (Mask2Former, OneFormer, SegFormer, UperNet + ConvNeXt; ADE20K,
Cityscapes, COCO-stuff checkpoints) with transformers' own post-processing, at the original
resolution. --json prints the COCO-style document of the other commands, one annotation (an RLE
mask) per class present, plus "semantic": the pixel share of each class. --out DIR writes
labels.png (indexed: the pixel value is the class index, see classes.txt), classes.txt,
overlay.png and result.json. Several images give one document per image and a folder per image.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import add_runtime_options, print_json, write_json
from vfm.cli.images import ImageRun, add_images_argument

DEFAULT_SEMANTIC_MODEL = "segformer-b0-ade"


def add_dense_options(p: argparse.ArgumentParser, default: str, files: str) -> None:
    add_images_argument(p)
    p.add_argument("--model", default=default,
                   help=f"segmentation alias, hub id or local directory (default {default}; `vfm models --task semantic`)")
    add_runtime_options(p)
    p.set_defaults(precision="fp32")
    for action in p._actions:
        if action.dest == "precision":
            action.help = "model precision (default fp32: transformers' numbers; bf16/fp16 for GPUs)"
    p.add_argument("--json", action="store_true", help="print one COCO-style JSON document per image on stdout")
    p.add_argument("--out", metavar="DIR", default=None,
                   help=f"write {files}, overlay.png and result.json into DIR (a folder per image when there are several)")
    p.add_argument("--quiet", action="store_true", help="no text output")


def add_parser(sub) -> None:
    p = sub.add_parser("semantic", help="semantic segmentation: a class for every pixel (SegFormer, Mask2Former, ...)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dense_options(p, DEFAULT_SEMANTIC_MODEL, "labels.png (indexed), classes.txt")
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.semantic import SemanticModel

    images = ImageRun(args, "semantic")
    model = None
    for item, image in images:
        if model is None:
            model = SemanticModel.load(args.model, device=args.device, precision=args.precision)
        sem = model.semantic(image)
        instances = sem.to_instances()
        doc = instances_to_document(instances, categories=model.class_names, file_name=item.name)
        doc["semantic"] = sem.to_json()
        d = images.out_dir(item)
        if d is not None:
            from vfm.formats.png import draw_overlay
            from vfm.formats.semantic import write_semantic

            doc["semantic"]["files"] = write_semantic(sem, d) + ["overlay.png", "result.json"]
            draw_overlay(image.pixels, instances, draw_boxes=False,
                         labels=list(instances.class_names or [])).save(d / "overlay.png")
            write_json(d / "result.json", doc)
        if args.json:
            print_json(doc)
        elif not args.quiet:
            print(f"{len(instances)} class(es) in {image.width}x{image.height} image '{item.path}' ({args.model}):")
            for c in sorted(doc["semantic"]["classes"], key=lambda c: -c["share"]):
                print(f"  {c['share'] * 100:6.2f}%  {c['name']}")
            if d is not None:
                print(f"wrote labels.png, classes.txt, overlay.png and result.json to {d}")
    return images.exit_code
