"""`vfm eval --gt GT.json --pred PRED.json [--iou-type segm|bbox]`: the COCO AP table.

Categories are matched by name, images by file_name (or id). PRED may be a COCO dataset (as `vfm
label` writes), the --json output of vfm detect / ground / everything (one document, or one per line
for several images), or a COCO results list.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="COCO AP of predictions against ground truth (categories matched by name)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, metavar="GT.json", help="ground-truth COCO dataset")
    p.add_argument("--pred", required=True, metavar="PRED.json", help="predictions: a COCO dataset, vfm's single-image --json documents, or a results list")
    p.add_argument("--iou-type", choices=["segm", "bbox"], default="segm", help="segm (masks, default) or bbox")
    p.add_argument("--json", action="store_true", help="print the 12 COCO stats and per-category AP as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

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
