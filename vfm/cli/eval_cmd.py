"""`vfm eval --gt GT.json --pred PRED.json [--iou-type segm|bbox]`: the COCO AP table;
`vfm eval --task depth --gt GT_DIR --pred PRED_DIR [--align auto|none|median|lstsq]`: AbsRel, RMSE, δ;
`vfm eval --task semantic --gt GT_DIR --pred PRED_DIR --classes FILE`: mIoU, pixel accuracy, per-class IoU;
`vfm eval --task bev --gt KITTI_LABELS --pred DIR`: BEV and 3D AP (R40) at IoU 0.5 and 0.7 per class;
`vfm eval --task vos --gt GT_DIR --pred DIR`: DAVIS J, F and J&F per object and mean.

Categories are matched by name, images by file_name (or id). PRED may be a COCO dataset (as `vfm
label` writes), the --json output of vfm detect / ground / everything (one document, or one per line
for several images), or a COCO results list.

Depth: GT_DIR holds 16-bit PNGs (metres x --gt-scale, 0 = none) or .npy maps in metres; PRED_DIR
what `vfm depth --out` writes (or .npy maps), paired by name. Relative maps are aligned to the
ground truth by a least-squares scale and shift on inverse depth (--align auto); see docs/depth.md.

Semantic: label PNGs (class index per pixel, 255 = ignore) paired by name; one confusion matrix
over all pixels, classes absent from both GT and predictions left out of the mean; docs/dense.md.

BEV: KITTI label files paired by name (GT_DIR/000123.txt with PRED_DIR/000123.txt, as vfm lidar3d
--out writes), or two files; every class of the ground truth but DontCare; docs/dense.md.

VOS: DAVIS-style indexed PNG masks per frame (value = object id), one sequence per folder (or its
masks/ subfolder, as vfm track --out writes) or one subfolder per sequence; frames paired by name;
the first and last frame left out as DAVIS 2017 does (--all-frames keeps them); docs/track.md.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="COCO AP of predictions against ground truth (categories matched by name)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["coco", "depth", "semantic", "bev", "vos"], default="coco",
                   help="coco (instances: AP, default), depth (depth maps: AbsRel, RMSE, δ), semantic (label maps: mIoU) "
                        "bev (KITTI 3D boxes: BEV and 3D AP) or vos (video masks: DAVIS J&F)")
    p.add_argument("--gt", required=True, metavar="GT", help="ground truth: a COCO dataset, or (depth) a folder of maps")
    p.add_argument("--pred", required=True, metavar="PRED",
                   help="predictions: a COCO dataset, vfm's single-image --json documents or a results list; "
                        "(depth) a folder of maps, as vfm depth --out writes")
    p.add_argument("--iou-type", choices=["segm", "bbox"], default="segm", help="segm (masks, default) or bbox")
    d = p.add_argument_group("depth (--task depth)")
    d.add_argument("--align", choices=["auto", "none", "median", "lstsq"], default="auto",
                   help="auto (default): lstsq scale+shift on inverse depth for relative maps, none for metric ones")
    d.add_argument("--gt-scale", type=float, default=256.0, metavar="S",
                   help="16-bit PNG value per metre (default 256, KITTI; 1000 for millimetre PNGs such as NYU)")
    d.add_argument("--min-depth", type=float, default=1e-3, metavar="M", help="ignore ground truth below M metres (default 0.001)")
    d.add_argument("--max-depth", type=float, default=None, metavar="M",
                   help="ignore ground truth above M metres and cap predictions there (default: no cap; 80 KITTI, 10 NYU)")
    d.add_argument("--pred-kind", choices=["metric", "relative"], default="metric",
                   help="what .npy/.png predictions without vfm's result.json are (default metric)")
    s = p.add_argument_group("semantic (--task semantic)")
    s.add_argument("--classes", metavar="FILE", default=None,
                   help="class names, one per line: line 1 is class 0 (classes.txt of vfm semantic / vfm label)")
    s.add_argument("--ignore-index", type=int, default=255, metavar="V", help="GT value left out (default 255)")
    v = p.add_argument_group("video object segmentation (--task vos)")
    v.add_argument("--all-frames", action="store_true", help="score the first and last frame too (DAVIS leaves them out)")
    p.add_argument("--json", action="store_true", help="print the stats as JSON")
    p.set_defaults(func=run)


def run_vos(args) -> int:
    import json

    from vfm.eval_vos import evaluate_vos

    res = evaluate_vos(args.gt, args.pred, skip_first_last=not args.all_frames)
    doc = res.to_dict()
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"DAVIS J&F over {len(res.objects)} object(s), {res.frames} frame(s) scored: "
          f"J&F {doc['J&F']:.4f}  J {doc['J']['mean']:.4f}  F {doc['F']['mean']:.4f}")
    print(f"  {'object':<24} {'J mean':>7} {'J rec':>6} {'J dec':>6} {'F mean':>7} {'F rec':>6} {'F dec':>6}")
    for key, o in res.objects.items():
        print(f"  {key:<24} {o['J']['mean']:7.4f} {o['J']['recall']:6.3f} {o['J']['decay']:6.3f} "
              f"{o['F']['mean']:7.4f} {o['F']['recall']:6.3f} {o['F']['decay']:6.3f}")
    return 0


def run(args) -> int:
    import json

    if args.task == "depth":
        return run_depth(args)
    if args.task == "semantic":
        return run_semantic(args)
    if args.task == "bev":
        return run_bev(args)
    if args.task == "vos":
        return run_vos(args)
    from vfm.eval import STAT_NAMES, evaluate

    res = evaluate(args.gt, args.pred, iou_type=args.iou_type)
    if args.json:
        print(json.dumps({"iou_type": args.iou_type, "images": res.matched_images, "dropped": res.dropped,
                          "stats": dict(zip(STAT_NAMES, res.stats)), "per_category_ap": res.per_category}))
        return 0
    print(f"COCO {args.iou_type} evaluation on {res.matched_images} shared image(s)")
    print(res.table.rstrip())
    if res.per_category:
        print("per-category AP @[IoU=0.50:0.95]:")
        for name, ap in res.per_category.items():
            print(f"  {name:<24} {ap:.3f}" if ap == ap else f"  {name:<24} n/a (no GT)")
    if res.dropped["category"] or res.dropped["image"]:
        print(f"dropped predictions: {res.dropped['category']} of categories not in GT, "
              f"{res.dropped['image']} on images not in GT")
    return 0


def run_depth(args) -> int:
    import json

    from vfm.eval_depth import evaluate_depth

    res = evaluate_depth(args.gt, args.pred, align=args.align, gt_scale=args.gt_scale, min_depth=args.min_depth,
                         max_depth=args.max_depth, pred_kind=args.pred_kind)
    if args.json:
        print(json.dumps({"task": "depth", "images": res.images, "align": res.align, **res.metrics,
                          "per_image": res.per_image}))
        return 0
    print(f"depth evaluation on {res.images} image(s), alignment {res.align}")
    for key, label in (("abs_rel", "AbsRel"), ("rmse", "RMSE (m)"), ("delta1", "δ<1.25"), ("delta2", "δ<1.25²"),
                       ("delta3", "δ<1.25³")):
        print(f"  {label:<10} {res.metrics[key]:.4f}")
    return 0


def run_semantic(args) -> int:
    import json

    from vfm.errors import PromptError
    from vfm.eval_semantic import evaluate_semantic

    if not args.classes:
        raise PromptError("--task semantic needs --classes FILE (one class name per line; vfm semantic --out writes classes.txt)")
    res = evaluate_semantic(args.gt, args.pred, args.classes, ignore_index=args.ignore_index)
    if args.json:
        print(json.dumps({"task": "semantic", "images": res.images, "miou": res.miou, "pixel_accuracy": res.pixel_accuracy,
                          "mean_accuracy": res.mean_accuracy, "per_class_iou": res.per_class_iou}))
        return 0
    print(f"semantic evaluation on {res.images} image(s): mIoU {res.miou:.4f}, pixel accuracy {res.pixel_accuracy:.4f}, "
          f"mean accuracy {res.mean_accuracy:.4f}")
    for name, iou in res.per_class_iou.items():
        print(f"  {name:<24} {iou:.4f}" if iou is not None else f"  {name:<24} n/a (absent from GT and predictions)")
    return 0


def run_bev(args) -> int:
    import json

    from vfm.eval_bev import evaluate_bev

    res = evaluate_bev(args.gt, args.pred)
    if args.json:
        print(json.dumps({"task": "bev", **res.to_json()}))
        return 0
    print(f"BEV / 3D AP (R40) on {res.frames} frame(s)")
    print(f"  {'class':<12} {'gt':>5} {'dets':>6}  BEV@0.5  BEV@0.7   3D@0.5   3D@0.7")
    for name, e in res.per_class.items():
        print(f"  {name:<12} {e['gt']:>5} {e['detections']:>6}  {e['bev']['0.5']:.4f}   {e['bev']['0.7']:.4f}   "
              f"{e['3d']['0.5']:.4f}   {e['3d']['0.7']:.4f}")
    if res.unmatched_predictions:
        print(f"{len(res.unmatched_predictions)} prediction file(s) have no ground truth and were left out")
    return 0
