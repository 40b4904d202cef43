"""`vfm panoptic IMAGE... --model M [--threshold T] [--out DIR] [--json]`: every thing and stuff segment.

Panoptic segmentation with Mask2Former / OneFormer COCO-panoptic checkpoints and transformers' own
post-processing: non-overlapping segments, each with a class and a score. --json prints the
COCO-style document of the other commands (one RLE mask per segment, "isthing" per segment).
--out DIR writes panoptic.png and panoptic.json (COCO panoptic: id = R + 256 G + 256^2 B),
overlay.png and result.json.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import print_json, write_json
from vfm.cli.images import ImageRun
from vfm.cli.semantic_cmd import add_dense_options
from vfm.errors import PromptError

DEFAULT_PANOPTIC_MODEL = "mask2former-coco-panoptic"


def add_parser(sub) -> None:
    p = sub.add_parser("panoptic", help="panoptic segmentation: things and stuff (Mask2Former, OneFormer)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dense_options(p, DEFAULT_PANOPTIC_MODEL, "panoptic.png, panoptic.json (COCO panoptic)")
    p.add_argument("--threshold", type=float, default=0.8, metavar="T",
                   help="keep segments whose class probability is above T (default 0.8, transformers' default)")
    p.add_argument("--mask-threshold", type=float, default=0.5, metavar="T",
                   help="a pixel belongs to a segment where its mask probability is above T (default 0.5)")
    p.add_argument("--overlap-threshold", type=float, default=0.8, metavar="T",
                   help="drop segments that keep less than T of their mask after overlaps are resolved (default 0.8)")
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.semantic import SemanticModel

    for name in ("threshold", "mask_threshold", "overlap_threshold"):
        v = getattr(args, name)
        if not 0.0 <= v <= 1.0:
            raise PromptError(f"--{name.replace('_', '-')} {v:g} is outside 0..1")
    images = ImageRun(args, "panoptic")
    model = None
    for item, image in images:
        if model is None:
            model = SemanticModel.load(args.model, device=args.device, precision=args.precision)
        pan = model.panoptic(image, threshold=args.threshold, mask_threshold=args.mask_threshold,
                             overlap_mask_area_threshold=args.overlap_threshold)
        doc = instances_to_document(pan, categories=model.class_names, file_name=item.name)
        for ann, thing in zip(doc["annotations"], pan.data.get("isthing", [])):
            ann["isthing"] = bool(thing)
        d = images.out_dir(item)
        if d is not None:
            from PIL import Image

            from vfm.formats.png import draw_overlay
            from vfm.formats.semantic import panoptic_document, panoptic_png

            rgb, _ = panoptic_png(pan)
            Image.fromarray(rgb).save(d / "panoptic.png")
            write_json(d / "panoptic.json", panoptic_document(pan, model.class_names, file_name=item.name,
                                                               png_name="panoptic.png"))
            draw_overlay(image.pixels, pan, draw_boxes=False).save(d / "overlay.png")
            write_json(d / "result.json", doc)
        if args.json:
            print_json(doc)
        elif not args.quiet:
            print(f"{len(pan)} segment(s) in {image.width}x{image.height} image '{item.path}' ({args.model})")
            for i, ann in enumerate(doc["annotations"]):
                print(f"  [{i}] {ann['category_name']} score={ann['score']:.3f} area={int(ann['area'])}"
                      f"{'' if ann['isthing'] else ' (stuff)'}")
            if d is not None:
                print(f"wrote panoptic.png, panoptic.json, overlay.png and result.json to {d}")
    return images.exit_code
