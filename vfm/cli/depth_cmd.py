"""`vfm depth IMAGE... --model M [--out DIR] [--json]`: a depth value for every pixel.

Relative depth (Depth Anything V2 small / base / large, DPT: inverse depth up to scale and shift,
larger = nearer) or metric depth in metres (Depth Anything V2 Metric indoor / outdoor, ZoeDepth,
Depth Pro), at the original resolution, with the numbers of transformers' depth-estimation
pipeline. --out DIR writes depth.png (16-bit: metres x 256 for metric maps, min-max to 0..65535
for relative ones, the range in result.json), depth.npy (float32) and depth_color.png (a preview:
near warm, far cool). JSON: {"image": {...}, "depth": {"kind", "unit", "model", "min", "max",
"median", "png_*", "files"}}. Several images give one document per image and a folder per image.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import add_runtime_options, print_json, write_json
from vfm.cli.images import ImageRun, add_images_argument

DEFAULT_DEPTH_MODEL = "depth-anything-v2-small"  # as vfm.tasks.depth (not imported here: --help stays torch-free)


def add_parser(sub) -> None:
    p = sub.add_parser("depth", help="monocular depth: relative (Depth Anything, DPT) or metric (ZoeDepth, Depth Pro)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_images_argument(p)
    p.add_argument("--model", default=DEFAULT_DEPTH_MODEL,
                   help=f"depth alias, hub id or local directory (default {DEFAULT_DEPTH_MODEL}; `vfm models --task depth`)")
    add_runtime_options(p)
    p.set_defaults(precision="fp32")
    for action in p._actions:
        if action.dest == "precision":
            action.help = "model precision (default fp32: the pipeline's numbers; bf16/fp16 for GPUs)"
    p.add_argument("--json", action="store_true", help="print one JSON document per image on stdout")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write depth.png (16-bit), depth.npy, depth_color.png and result.json into DIR "
                        "(a folder per image when there are several)")
    p.add_argument("--quiet", action="store_true", help="no text output")
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.tasks.depth import DepthEstimator

    images = ImageRun(args, "depth")
    est = None
    for item, image in images:
        if est is None:
            est = DepthEstimator.load(args.model, device=args.device, precision=args.precision)
        depth = est.estimate(image)
        doc = {"image": {"width": image.width, "height": image.height, "file_name": item.name}, "depth": depth.to_json()}
        d = images.out_dir(item)
        if d is not None:
            from vfm.formats.depth import write_depth

            doc["depth"].update(write_depth(depth, d))
            write_json(d / "result.json", doc)
        if args.json:
            print_json(doc)
        elif not args.quiet:
            s = doc["depth"]
            print(f"{depth.kind} depth for {image.width}x{image.height} image '{item.path}' ({args.model}): "
                  f"min {s['min']:.4g}, median {s['median']:.4g}, max {s['max']:.4g} {depth.unit}")
            if d is not None:
                print(f"wrote depth.png, depth.npy, depth_color.png and result.json to {d}")
    return images.exit_code
