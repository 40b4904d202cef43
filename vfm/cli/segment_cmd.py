"""`vfm segment IMAGE --model M --point X,Y[,LABEL] ... --box X0,Y0,X1,Y1 ... [--multimask]`.

All points and the first box form one prompt; each further box is its own prompt with the same
points. Without --multimask one mask per prompt; with it SAM's three masks per prompt.

`vfm segment IMAGE... --model sam3 --text "yellow school bus" [--exemplar X0,Y0,X1,Y1[,+|-]] [--threshold T]`:
every instance of a concept (SAM 3): a noun phrase, example boxes (positive by default, `,-` negative),
or both.

`vfm segment IMAGE... --task instance [--model M] [--classes "person, car"]`: no prompts; every object
of a closed-set instance checkpoint (Mask2Former, OneFormer, EoMT; default mask2former-coco-instance)
with its class and score, transformers' post-processing.
"""

from __future__ import annotations

import argparse

import numpy as np

from vfm.cli.common import add_backend_options, add_output_options, add_runtime_options, out_dir, parse_floats, print_json, write_json
from vfm.errors import PromptError

DEFAULT_SEGMENTER = "sam-vit-base"
DEFAULT_INSTANCE_MODEL = "mask2former-coco-instance"


def add_parser(sub) -> None:
    p = sub.add_parser("segment", help="masks from points, boxes, scribbles or a mask (SAM, SAM-HQ, SAM 2)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image file (JPEG, PNG, WebP, TIFF, BMP, GIF); with --task instance also several, folders or globs")
    p.add_argument("--task", choices=("prompt", "instance"), default="prompt",
                   help="prompt (default): masks for the given points/boxes; instance: every object of a closed-set "
                        "instance checkpoint, no prompts")
    p.add_argument("--model", default=None, help=f"alias, hub id, local directory or Meta-format .pth/.pt file (default {DEFAULT_SEGMENTER}; "
                                                 f"--task instance: {DEFAULT_INSTANCE_MODEL})")
    p.add_argument("--point", action="append", default=[], metavar="X,Y[,LABEL]",
                   help="a point in image pixels; LABEL 1 (default) positive, 0 negative; repeatable")
    p.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1", help="a box in image pixels (XYXY); repeatable")
    p.add_argument("--scribble", action="append", default=[], metavar="X,Y;X,Y;...",
                   help="a positive scribble (polyline) turned into points along it; repeatable")
    p.add_argument("--mask-input", metavar="PNG", default=None,
                   help="a binary mask (PNG the size of the image) to refine, e.g. a previous answer")
    p.add_argument("--multimask", action="store_true", help="three masks per prompt with predicted-IoU scores")
    c = p.add_argument_group("concepts (SAM 3: --model sam3)")
    c.add_argument("--text", default=None, help='every instance of a noun phrase, e.g. --text "yellow school bus"')
    c.add_argument("--exemplar", action="append", default=[], metavar="X0,Y0,X1,Y1[,+|-]",
                   help="an example box of the concept (positive, or negative with ,-); with or without --text; repeatable")
    g = p.add_argument_group("--task instance (and --threshold, --mask-threshold for concepts)")
    g.add_argument("--classes", default=None, help='keep only these of the model\'s classes, e.g. "person, car"')
    g.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="keep instances scoring at least T (default: the processor's, 0.5; EoMT 0.8; SAM 3 0.5)")
    g.add_argument("--mask-threshold", type=float, default=None, metavar="T",
                   help="OneFormer, SAM 3: mask probability above which a pixel belongs to an instance (default 0.5)")
    g.add_argument("--overlap-threshold", type=float, default=None, metavar="T",
                   help="Mask2Former/OneFormer: drop instances keeping less than T of their mask (default 0.8)")
    add_runtime_options(p)
    add_backend_options(p)
    add_output_options(p)
    p.set_defaults(func=run)


def parse_point(text: str) -> tuple[float, float, int]:
    v = parse_floats(text, (2, 3), "point", "X,Y or X,Y,LABEL")
    label = 1 if len(v) == 2 else v[2]
    if label not in (0, 1):
        raise PromptError(f"point '{text}': LABEL must be 1 (positive) or 0 (negative)")
    return v[0], v[1], int(label)


def parse_scribble(text: str) -> list[tuple[float, float]]:
    pts = []
    for part in text.split(";"):
        if part.strip():
            x, y = parse_floats(part, (2,), "scribble point", "X,Y;X,Y;...")
            pts.append((x, y))
    if not pts:
        raise PromptError(f"scribble '{text}' has no points; expected X,Y;X,Y;...")
    return pts


def build_prompts(args, image_size: tuple[int, int]):
    from vfm.tasks.prompts import Prompt, scribble_to_points

    points = [parse_point(p) for p in args.point]
    for s in args.scribble:
        points += [(x, y, 1) for x, y in scribble_to_points(parse_scribble(s))]
    boxes = [parse_floats(b, (4,), "box", "X0,Y0,X1,Y1") for b in args.box]
    mask = None
    if args.mask_input:
        from vfm.io.image import load_image

        m = load_image(args.mask_input).pixels[:, :, 0] > 127
        if m.shape != image_size:
            raise PromptError(f"--mask-input is {m.shape[1]}x{m.shape[0]} but the image is {image_size[1]}x{image_size[0]}")
        mask = m
    if not points and not boxes and mask is None:
        raise PromptError("give at least one --point X,Y[,LABEL], --box X0,Y0,X1,Y1, --scribble or --mask-input")
    xy = np.array([(x, y) for x, y, _ in points]) if points else None
    labels = np.array([lab for _, _, lab in points]) if points else None
    if not boxes:
        return [Prompt(points=xy, labels=labels, mask_input=mask)]
    return [Prompt(points=xy, labels=labels, box=b, mask_input=mask) for b in boxes]


def run(args) -> int:
    if args.text is not None or args.exemplar:
        if args.task == "instance":
            raise PromptError("--text/--exemplar are concept prompts (SAM 3); they do not go with --task instance")
        from vfm.cli.concept_run import run_concept

        return run_concept(args)
    if args.task == "instance":
        from vfm.cli.instance_run import run_instance

        return run_instance(args, DEFAULT_INSTANCE_MODEL)
    prompt_flags = [f for f, v in (("--classes", args.classes), ("--threshold", args.threshold),
                                   ("--mask-threshold", args.mask_threshold), ("--overlap-threshold", args.overlap_threshold))
                    if v is not None]
    if prompt_flags:
        raise PromptError(f"{prompt_flags[0]} is an option of --task instance; prompted segmentation takes "
                          "--point/--box/--scribble/--mask-input")
    if len(args.images) != 1:
        raise PromptError(f"prompted segmentation takes one image ({len(args.images)} given): the prompts are its pixels")
    args.image = args.images[0]
    args.model = args.model or DEFAULT_SEGMENTER
    from vfm.formats.coco import instances_to_document
    from vfm.io.image import load_image
    from vfm.tasks.segment import Segmenter

    from pathlib import Path

    if args.out:
        out_dir(args.out)  # an unusable --out fails before the model is loaded
    image = load_image(args.image, max_pixels=args.max_pixels, name=Path(args.image).name)
    prompts = build_prompts(args, (image.height, image.width))
    for p in prompts:  # fail on bad prompts before loading the model
        p.check_inside(image.height, image.width)
    seg = Segmenter.load(args.model, device=args.device, precision=args.precision, backend=args.backend)
    result = seg.predict_batch(prompts, multimask=args.multimask, image=image, return_logits=False)
    doc = instances_to_document(result, file_name=image.name)
    if args.out:
        from vfm.formats.png import draw_overlay, write_mask_pngs

        d = out_dir(args.out)
        write_mask_pngs(result, d)
        pts = [(x, y, lab) for p in prompts[:1] if p.points is not None for (x, y), lab in zip(p.points, p.labels)]
        boxes = [p.box for p in prompts if p.box is not None]
        draw_overlay(image.pixels, result, points=pts, prompt_boxes=boxes, draw_boxes=False).save(d / "overlay.png")
        write_json(d / "result.json", doc)
    if args.json:
        print_json(doc)
    elif not args.quiet:
        print(f"{len(result)} mask(s) for {image.width}x{image.height} image '{args.image}'")
        for i, ann in enumerate(doc["annotations"]):
            x, y, w, h = ann["bbox"]
            print(f"  [{i}] score={ann['score']:.3f} area={int(ann['area'])} bbox(xywh)=({x:g}, {y:g}, {w:g}, {h:g})")
        if args.out:
            print(f"wrote {len(result)} mask PNG(s), overlay.png and result.json to {args.out}")
    return 0
