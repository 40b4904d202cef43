"""`vfm lidar3d SCAN... --model SAM [--classes "car, pedestrian"] [--out DIR] [--json]`: 3D boxes from LiDAR (SAM3D).

Each scan (KITTI .bin, .pcd, .ply, .npy N x 3/4) is cropped to the bird's-eye-view range, its ground
removed, rendered as a BEV picture and segmented everything by SAM (or prompted with --point X,Y /
--box X0,Y0,X1,Y1, metres in the scan's frame); every mask is lifted back to its
points and fitted with an oriented 3D box, named by size priors (Car, Pedestrian, Cyclist, Truck).
--out DIR writes, per scan, <name>.txt (KITTI labels: Car 0 0 alpha x1 y1 x2 y2 h w l x y z ry score;
camera frame through --calib, else KITTI's axes), <name>.json (LiDAR-frame boxes with their point
indices) and <name>_bev.png (the BEV picture with the boxes). The method and its limits: docs/dense.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vfm.cli.common import add_runtime_options, out_dir, parse_floats, print_json, write_json

DEFAULT_SEGMENTER = "sam-vit-base"


def add_parser(sub) -> None:
    p = sub.add_parser("lidar3d", help="zero-shot 3D boxes from LiDAR scans: SAM on the bird's-eye view (SAM3D)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scans", nargs="+", metavar="SCAN", help="point clouds: .bin (KITTI), .pcd, .ply, .npy")
    p.add_argument("--model", default=DEFAULT_SEGMENTER, help=f"SAM alias, hub id or local directory (default {DEFAULT_SEGMENTER})")
    p.add_argument("--classes", default=None,
                   help='keep boxes whose size fits these classes: "car, pedestrian, cyclist, truck" (default: all, '
                        'unfitting ones named Object)')
    g = p.add_argument_group("bird's-eye view (defaults: SAM3D's, see docs/dense.md)")
    g.add_argument("--range", default="-30,-30,30,30", metavar="X0,Y0,X1,Y1", help="x and y range in metres (default -30,-30,30,30)")
    g.add_argument("--z-range", default="-3,4", metavar="Z0,Z1", help="height range in metres, sensor frame (default -3,4)")
    g.add_argument("--resolution", type=float, default=0.1, metavar="M", help="metres per BEV pixel (default 0.1)")
    g.add_argument("--dilate", type=int, default=1, metavar="K", help="3x3 dilations of the BEV picture (default 1)")
    g.add_argument("--ground-threshold", type=float, default=0.2, metavar="M",
                   help="points less than M metres above the fitted ground plane are ground (default 0.2)")
    g.add_argument("--min-points", type=int, default=5, metavar="N", help="drop boxes of fewer points (default 5)")
    g.add_argument("--nms-iou", type=float, default=0.5, metavar="T", help="BEV IoU above which the lower-scored box goes (default 0.5)")
    a = p.add_argument_group("segment everything on the BEV picture, or prompts")
    a.add_argument("--point", action="append", default=[], metavar="X,Y",
                   help="prompt SAM at this spot, metres in the scan's frame (one prompt, one box); repeatable")
    a.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="prompt SAM with this ground rectangle, metres in the scan's frame; repeatable")
    a.add_argument("--points-per-side", type=int, default=32, metavar="N", help="N x N point grid (default 32)")
    a.add_argument("--pred-iou-thresh", type=float, default=None, metavar="T", help="SAM predicted-IoU threshold (default 0.88)")
    a.add_argument("--stability-score-thresh", type=float, default=None, metavar="T", help="stability threshold (default 0.95)")
    p.add_argument("--calib", metavar="FILE", default=None,
                   help="KITTI calibration (Tr_velo_to_cam, R0_rect, P2) for the camera-frame labels and 2D boxes")
    add_runtime_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON document per scan on stdout")
    p.add_argument("--out", metavar="DIR", default=None, help="write <name>.txt (KITTI), <name>.json and <name>_bev.png")
    p.add_argument("--quiet", action="store_true", help="no text output")
    p.set_defaults(func=run)


def build_grid(args):
    from vfm.lidar.bev import BEVGrid

    x0, y0, x1, y1 = parse_floats(args.range, (4,), "--range", "X0,Y0,X1,Y1")
    z0, z1 = parse_floats(args.z_range, (2,), "--z-range", "Z0,Z1")
    return BEVGrid((x0, x1), (y0, y1), (z0, z1), args.resolution)


def document(name: str, result, records: list[dict], model: str) -> dict:
    g = result.grid
    return {"scan": name, "model": model,
            "bev": {"x_range": list(g.x_range), "y_range": list(g.y_range), "z_range": list(g.z_range),
                    "resolution": g.resolution, "width": g.width, "height": g.height},
            "ground": None if result.ground is None else {"normal": [round(float(v), 6) for v in result.ground.normal],
                                                          "offset": round(result.ground.offset, 6)},
            "points_in_range": result.points_in_range, "ground_points": result.ground_points, "masks": result.masks,
            "boxes": [dict(box, kitti=rec) for box, rec in zip(result.boxes.to_json(), records)]}


def _load(args, grid):
    from vfm.lidar.detect3d import Lidar3D

    common = dict(dilate=args.dilate, ground_threshold=args.ground_threshold, min_points=args.min_points,
                  nms_iou=args.nms_iou)
    if args.point or args.box:
        return Lidar3D.load_prompted(args.model, args.points_m, args.boxes_m, grid, device=args.device,
                                     precision=args.precision, **common)
    return Lidar3D.load(args.model, grid, device=args.device, precision=args.precision,
                        points_per_side=args.points_per_side, pred_iou_thresh=args.pred_iou_thresh,
                        stability_score_thresh=args.stability_score_thresh, **common)


def run(args) -> int:
    from vfm.formats.kitti import format_line, read_calib, to_camera, write_labels
    from vfm.lidar.io import PointCloudError, read_points
    from vfm.lidar.priors import parse_lidar_classes

    grid = build_grid(args)
    args.points_m = [parse_floats(v, (2,), "--point", "X,Y (metres)") for v in args.point]
    args.boxes_m = [parse_floats(v, (4,), "--box", "X0,Y0,X1,Y1 (metres)") for v in args.box]
    if args.points_m or args.boxes_m:
        from vfm.lidar.detect3d import bev_prompts

        bev_prompts(grid, args.points_m, args.boxes_m)  # a prompt outside the range fails before the model loads
    classes = parse_lidar_classes(args.classes) if args.classes is not None else None
    calib = read_calib(args.calib) if args.calib else None
    root = out_dir(args.out) if args.out else None
    detector, failed = None, 0
    stems = [Path(s).stem for s in args.scans]
    for scan, stem in zip(args.scans, stems):
        try:
            cloud = read_points(scan)
            if detector is None:  # loaded at the first readable scan; a model error stops the run
                detector = _load(args, grid)
            result = detector.detect(cloud, classes)
        except PointCloudError as exc:  # this scan is unusable; the others are still done
            if len(args.scans) == 1:
                raise
            failed += 1
            sys.stderr.write(f"vfm lidar3d: error: {exc}\n")
            continue
        records = to_camera(result.boxes, calib)
        doc = document(cloud.name, result, records, args.model)
        if root is not None:
            from vfm.lidar.draw import draw_bev

            name = stem if stems.count(stem) == 1 else Path(scan).name
            write_labels(root / f"{name}.txt", records)
            write_json(root / f"{name}.json", doc)
            draw_bev(result.bev, result.grid, result.boxes).save(root / f"{name}_bev.png")
        if args.json:
            print_json(doc)
        elif not args.quiet:
            print(f"{len(result.boxes)} box(es) in '{scan}' ({len(cloud):,} points, {result.points_in_range:,} in range, "
                  f"{result.ground_points:,} ground, {result.masks} BEV masks)")
            for rec in records:
                print("  " + format_line(rec))
    if root is not None and not args.quiet and not args.json:
        print(f"wrote KITTI labels, JSON and BEV pictures to {root}")
    return 1 if failed else 0
