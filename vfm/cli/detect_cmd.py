"""`vfm detect IMAGE... --model M --classes "cat, remote control" [--box-threshold T] [--text-threshold T]`.

Open-vocabulary detection (Grounding DINO, OWLv2, OWL-ViT): boxes with class names and scores.
Closed-set detectors (RT-DETR, RT-DETR v2, D-FINE, DETR, Conditional / Deformable DETR) find their
own classes without --classes (which then keeps only the named ones); --box-threshold defaults to
0.5 for them, as transformers' object-detection pipeline.
`--classes "person: astronaut, forklift"` asks the model for "person" and names the boxes
"astronaut". `--exemplar-box X0,Y0,X1,Y1 [--exemplar-image FILE]` finds objects like the one in
that box instead (OWL models only). Long class lists are split to fit the text encoder, never
truncated. Several images (files, folders, globs) give one JSON document per image (JSON Lines).
"""

from __future__ import annotations

import argparse
import dataclasses

from vfm.cli.common import add_output_options, add_runtime_options, parse_floats, print_json, write_json
from vfm.cli.images import ImageRun, add_images_argument
from vfm.errors import PromptError

DEFAULT_DETECTOR = "grounding-dino-tiny"


def add_class_options(p: argparse.ArgumentParser) -> None:
    """--classes, --vocabulary, --box-threshold, --text-threshold (shared with `vfm ground`)."""
    p.add_argument("--classes", default=None,
                   help='class names separated by commas, e.g. "cat, remote control"; "prompt: class" asks the model '
                        'for prompt and names the result class, e.g. "person: astronaut"')
    p.add_argument("--vocabulary", metavar="FILE", default=None, help="a file with one class name per line (instead of --classes)")
    p.add_argument("--box-threshold", type=float, default=None, metavar="T",
                   help="keep boxes scoring above T, 0..1 (default 0.35 for Grounding DINO, 0.1 for OWL)")
    p.add_argument("--text-threshold", type=float, default=None, metavar="T",
                   help="Grounding DINO: a box's class tokens must score above T, 0..1 (default 0.25)")
    p.add_argument("--max-detections", type=int, default=None, metavar="K",
                   help="keep only the K best-scoring boxes (default: all above the thresholds)")


def read_class_option(args, *, required: bool = True) -> list[str] | None:
    """The entries of --classes or --vocabulary (``prompt: class`` kept; see :func:`categories_of`)."""
    from vfm.tasks.classes import parse_classes, read_vocabulary

    if args.classes is not None and args.vocabulary is not None:
        raise PromptError("give either --classes or --vocabulary, not both")
    if args.vocabulary is not None:
        return read_vocabulary(args.vocabulary)
    if args.classes is not None:
        return parse_classes(args.classes)
    if required:
        raise PromptError('give the classes to find with --classes "cat, remote control" or --vocabulary FILE')
    return None


def categories_of(entries: list[str]) -> list[str]:
    """The class names of a class list (the right side of ``prompt: class``); checks the mapping."""
    from vfm.tasks.ontology import Ontology

    return list(Ontology.parse(entries).classes)


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="open-vocabulary detection: class names or an example box -> boxes",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_DETECTOR, help=f"alias, hub id or local directory (default {DEFAULT_DETECTOR})")
    add_class_options(p)
    p.add_argument("--exemplar-box", metavar="X0,Y0,X1,Y1", default=None,
                   help="find objects like the one in this box (OWL models); --box-threshold then defaults to 0.5")
    p.add_argument("--exemplar-image", metavar="FILE", default=None,
                   help="the image --exemplar-box refers to (default: IMAGE itself)")
    add_runtime_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.formats.coco import instances_to_document
    from vfm.io.image import load_image
    from vfm.tasks.detect import Detector, check_threshold

    check_threshold(args.box_threshold, "--box-threshold")
    check_threshold(args.text_threshold, "--text-threshold")
    if args.exemplar_box is None:
        if args.exemplar_image is not None:
            raise PromptError("--exemplar-image needs --exemplar-box X0,Y0,X1,Y1 (the example in that image)")
        classes = read_class_option(args, required=False)
        if classes is None:
            from vfm.models.registry import resolve
            from vfm.tasks.closed_detect import CLOSED_SET_FAMILIES

            if resolve(args.model, task="detect").family not in CLOSED_SET_FAMILIES:
                raise PromptError('give the classes to find with --classes "cat, remote control" or --vocabulary FILE '
                                  "(closed-set detectors such as rtdetr-v2-r18 find their own classes without it)")
        categories = categories_of(classes) if classes is not None else None  # None: the model's own, once loaded
    else:
        if args.classes is not None or args.vocabulary is not None:
            raise PromptError("give either --classes/--vocabulary or --exemplar-box, not both")
        box = parse_floats(args.exemplar_box, (4,), "--exemplar-box", "X0,Y0,X1,Y1")
        query = load_image(args.exemplar_image, max_pixels=args.max_pixels) if args.exemplar_image else None
        categories = ["exemplar"]
    images = ImageRun(args, "detect")
    det = None
    for item, image in images:
        if det is None:
            det = Detector.load(args.model, device=args.device, precision=args.precision)
            if categories is None:
                categories = list(det.class_names)
        if args.exemplar_box is None:
            result = det.detect(image.pixels, classes, box_threshold=args.box_threshold,
                                text_threshold=args.text_threshold, max_detections=args.max_detections)
        else:
            try:
                found = det.detect_exemplar(image.pixels, None if query is None else query.pixels, box,
                                            threshold=args.box_threshold)
            except PromptError as exc:  # the box is outside this image: the others are still done
                if not images.several:
                    raise
                images.report(exc)
                continue
            result = dataclasses.replace(found, class_ids=[0] * len(found), class_names=["exemplar"] * len(found))
        doc = instances_to_document(result, categories=categories, file_name=item.name)
        d = images.out_dir(item)
        if d is not None:
            from vfm.formats.png import draw_overlay

            draw_overlay(image.pixels, result, draw_boxes=True).save(d / "overlay.png")
            write_json(d / "result.json", doc)
        if args.json:
            print_json(doc)
        elif not args.quiet:
            print(f"{len(result)} box(es) for {image.width}x{image.height} image '{item.path}' ({det.name})")
            for i, ann in enumerate(doc["annotations"]):
                x, y, w, h = ann["bbox"]
                print(f"  [{i}] {ann.get('category_name', '')} score={ann['score']:.3f} bbox(xywh)=({x:g}, {y:g}, {w:g}, {h:g})")
            if d is not None:
                print(f"wrote overlay.png and result.json to {d}")
    return images.exit_code
