"""`vfm everything IMAGE... --model M [--points-per-side N] ... --json | --out DIR`.

SAM's automatic mask generator ("segment everything") with the reference's parameters and defaults.
Masks come out as COCO RLE in the same JSON document as `vfm segment`; --out DIR writes one PNG per
mask (mask_000.png, ...), a colored overlay.png and result.json. Several images (files, folders,
globs) give one document per image (JSON Lines) and a folder per image under --out. Progress goes
to stderr when it is a terminal (off with --quiet).
"""

from __future__ import annotations

import argparse
import sys

from vfm.cli.common import add_backend_options, add_output_options, add_runtime_options, print_json, stderr_is_tty, write_json
from vfm.cli.images import ImageRun, add_images_argument

DEFAULT_SEGMENTER = "sam-vit-base"


def add_parser(sub) -> None:
    p = sub.add_parser("everything", help="segment everything: all masks of an image (SAM, SAM-HQ, SAM 2)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_SEGMENTER, help=f"alias, hub id or local directory (default {DEFAULT_SEGMENTER})")
    g = p.add_argument_group("mask generator (SAM's SamAutomaticMaskGenerator parameters)")
    g.add_argument("--points-per-side", type=int, default=32, metavar="N", help="N x N point grid (default 32)")
    g.add_argument("--points-per-batch", type=int, default=64, metavar="N", help="points decoded at once (default 64)")
    g.add_argument("--pred-iou-thresh", type=float, default=0.88, metavar="T", help="keep masks with predicted IoU > T (default 0.88)")
    g.add_argument("--stability-score-thresh", type=float, default=0.95, metavar="T",
                   help="keep masks with stability score >= T (default 0.95)")
    g.add_argument("--stability-score-offset", type=float, default=1.0, metavar="X",
                   help="logit offset of the stability score (default 1.0)")
    g.add_argument("--box-nms-thresh", type=float, default=0.7, metavar="T", help="box IoU for NMS within a crop (default 0.7)")
    g.add_argument("--crop-n-layers", type=int, default=0, metavar="K", help="layers of image crops, (2**i)^2 crops in layer i (default 0)")
    g.add_argument("--crop-nms-thresh", type=float, default=0.7, metavar="T", help="box IoU for NMS across crops (default 0.7)")
    g.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500, metavar="R",
                   help="overlap of neighbouring crops, fraction of the short side (default 512/1500)")
    g.add_argument("--crop-n-points-downscale-factor", type=int, default=1, metavar="F",
                   help="points per side in crop layer i are divided by F**i (default 1)")
    g.add_argument("--min-mask-region-area", type=int, default=0, metavar="A",
                   help="remove holes and islands smaller than A pixels (default 0: off)")
    add_runtime_options(p)
    add_backend_options(p)
    add_output_options(p)
    # Mask labeling options (--classes/--vocabulary ...) are added here by the lead, see label_opts.
    _add_extra_options(p)
    p.set_defaults(func=run)


def _add_extra_options(p: argparse.ArgumentParser) -> None:
    """Options other modules contribute to `vfm everything`: a label for every mask."""
    from vfm.cli.label_opts import add_label_options

    add_label_options(p)


def _check(args) -> None:
    from vfm.errors import PromptError

    for name, lo, hi in [("pred_iou_thresh", None, None), ("stability_score_thresh", 0.0, 1.0),
                         ("box_nms_thresh", 0.0, 1.0), ("crop_nms_thresh", 0.0, 1.0)]:
        v = getattr(args, name)
        if v != v or (lo is not None and not lo <= v <= hi):  # NaN or out of range
            raise PromptError(f"--{name.replace('_', '-')} must be between {lo} and {hi}, got {v}")
    if args.stability_score_offset != args.stability_score_offset or args.stability_score_offset < 0:
        raise PromptError(f"--stability-score-offset must be 0 or more, got {args.stability_score_offset}")


class _Progress:
    """A rich progress bar on stderr, one step per decoded point batch."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(file=sys.stderr), transient=True)
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def __call__(self, done: int, total: int, stage: str) -> None:
        if self.task is None:
            self.task = self.bar.add_task(stage, total=total)
        self.bar.update(self.task, completed=done, total=total, description=stage)


def run(args) -> int:
    import contextlib

    from vfm.cli.label_opts import apply_labels, label_classes
    from vfm.formats.coco import instances_to_document
    from vfm.tasks.everything import MaskGenerator
    from vfm.tasks.segment import Segmenter

    _check(args)
    classes = label_classes(args)
    if classes is not None:
        from vfm.tasks.ontology import Ontology

        Ontology.parse(classes)  # a malformed "prompt: class" fails before any model loads
    kwargs = dict(
        points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
        pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
        stability_score_offset=args.stability_score_offset, box_nms_thresh=args.box_nms_thresh,
        crop_n_layers=args.crop_n_layers, crop_nms_thresh=args.crop_nms_thresh,
        crop_overlap_ratio=args.crop_overlap_ratio, crop_n_points_downscale_factor=args.crop_n_points_downscale_factor,
        min_mask_region_area=args.min_mask_region_area,
    )
    MaskGenerator(None, **kwargs)  # validate the parameters before loading the model
    images = ImageRun(args, "everything")
    seg = None
    for item, image in images:
        if seg is None:
            seg = Segmenter.load(args.model, device=args.device, precision=args.precision, backend=args.backend)
        show = not args.quiet and stderr_is_tty()
        progress = _Progress() if show else None
        gen = MaskGenerator(seg, progress=progress, **kwargs)
        with progress if progress is not None else contextlib.nullcontext():
            result = gen.generate(image)
        result, categories = apply_labels(args, image, result)
        doc = instances_to_document(result, categories=categories, file_name=item.name)
        d = images.out_dir(item)
        if d is not None:
            from vfm.formats.png import draw_overlay, write_mask_pngs

            write_mask_pngs(result, d)
            draw_overlay(image.pixels, result, draw_boxes=False).save(d / "overlay.png")
            write_json(d / "result.json", doc)
        if args.json:
            print_json(doc)
        elif not args.quiet:
            print(f"{len(result)} mask(s) for {image.width}x{image.height} image '{item.path}'")
            if d is not None:
                print(f"wrote {len(result)} mask PNG(s), overlay.png and result.json to {d}")
    return images.exit_code
