"""`vfm index SOURCE --model M --db PATH [--objects [COCO.json]] [--workers N | --ray [ADDRESS]]`.

Builds or updates an on-disk index of SOURCE (a folder, a text file listing images, or a glob):
a second run embeds only new or changed files and drops deleted ones; a run killed at any moment
is finished by the next one with nothing lost or doubled. The index is a folder: index.sqlite
(files, vectors, metadata) and a FAISS file built from it: exact up to 200,000 vectors, an IVF
index with a tuned nprobe above (--index-kind to choose). --objects COCO.json also indexes every
mask or box of a labeled dataset (the coco.json of `vfm label`) as its own entry; --objects with
--segmenter segments everything on the fly. Prints a summary (JSON with --json); corrupt images
are listed, not fatal (exit code 1 when there were any).
"""

from __future__ import annotations

import argparse
import sys

from vfm.cli.common import print_json
from vfm.cli.embed_cmd import DEFAULT_EMBED_MODEL


def add_parser(sub) -> None:
    p = sub.add_parser("index", help="build or update a searchable index of a folder (FAISS + SQLite)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="folder (recursive), text file listing images, or glob")
    p.add_argument("--db", required=True, metavar="PATH", help="index folder (created if new)")
    p.add_argument("--model", default=DEFAULT_EMBED_MODEL, help=f"embedding model (default {DEFAULT_EMBED_MODEL})")
    p.add_argument("--pooling", default="cls", choices=["cls", "mean"], help="DINOv2 / DINOv3 pooling (default cls)")
    p.add_argument("--objects", nargs="?", const="everything", default=None, metavar="COCO.json",
                   help="also index every object: the annotations of COCO.json, or (no file) segment-everything "
                        "masks made on the fly with --segmenter")
    p.add_argument("--segmenter", default="sam-vit-base", help="SAM model for --objects without a file (default sam-vit-base)")
    p.add_argument("--points-per-side", type=int, default=16, help="segment-everything grid for --objects (default 16)")
    p.add_argument("--pred-iou-thresh", type=float, default=None, metavar="T",
                   help="--objects without a file: keep masks with predicted IoU above T (default 0.88)")
    p.add_argument("--stability-score-thresh", type=float, default=None, metavar="T",
                   help="--objects without a file: keep masks with stability score above T (default 0.95)")
    p.add_argument("--index-kind", default=None, choices=["auto", "flat", "ivf"],
                   help="FAISS index: auto (default: exact up to 200,000 vectors, then IVF), flat (exact), ivf")
    p.add_argument("--workers", type=int, default=1, help="embed in N processes (default 1)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="embed on Ray: a local cluster, or join ADDRESS (auto, host:6379, ray://host:10001)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16", "fp16"],
                   help="model precision (default fp32); a query is embedded the same way")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (default 100M)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.errors import PromptError

    if args.workers < 1:
        raise PromptError(f"--workers must be at least 1, got {args.workers}")
    if args.batch < 1:
        raise PromptError(f"--batch must be at least 1, got {args.batch}")
    if args.points_per_side < 1:
        raise PromptError(f"--points-per-side must be at least 1, got {args.points_per_side}")
    from vfm.engine.progress import Progress
    from vfm.search.indexer import build_index

    config = {"model": args.model, "pooling": args.pooling, "precision": args.precision, "objects": args.objects,
              "segmenter": args.segmenter, "points_per_side": args.points_per_side, "max_pixels": args.max_pixels,
              "pred_iou_thresh": args.pred_iou_thresh, "stability_score_thresh": args.stability_score_thresh}
    bar = None

    def progress(done, total):
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = Progress(total=max(total, done), description="indexing")
        bar.advance(1 if done else 0)

    try:
        report = build_index(args.source, args.db, config, workers=args.workers,
                             ray=False if args.ray is None else args.ray, device=args.device, batch=args.batch,
                             index_kind=args.index_kind, on_progress=progress)
    finally:
        if bar is not None:
            bar.close()
    doc = report.to_json()
    if args.json:
        print_json(doc)
    elif not args.quiet:
        for err in doc["errors"]:
            sys.stderr.write(f"vfm index: skipped {err['file_name']}: {err['error']}\n")
        rate = f", {doc['images_per_s']} images/s" if doc["images_per_s"] else ""
        print(f"indexed {args.source} into {args.db}: {doc['added']} added, {doc['changed']} changed, "
              f"{doc['unchanged']} unchanged, {doc['removed']} removed, {len(doc['errors'])} unreadable; "
              f"{doc['vectors']} vectors, {doc['index']} index{rate} ({doc['seconds']:.1f} s)")
    return 1 if doc["errors"] else 0
