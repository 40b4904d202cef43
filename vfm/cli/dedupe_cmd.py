"""`vfm dedupe SOURCE | --db PATH [--threshold T] [--keep first|largest] [--json] [--out DIR]`.

Exact duplicates (same SHA-256) and near-duplicate clusters (cosine >= T between image
embeddings, connected components). With SOURCE the folder is indexed first (into --db when given,
so a later run only embeds what changed; else into a temporary index). --keep prints the files a
user could remove, one per line, keeping one per cluster (the first in scan order, or the largest);
vfm never deletes anything. --json prints {"threshold", "keep", "images", "exact": [...],
"near": [...], "removable": [...]}; --out DIR writes a contact sheet per cluster and dedupe.json.
"""

from __future__ import annotations

import argparse
import sys

from vfm.cli.common import print_json, write_json
from vfm.cli.embed_cmd import DEFAULT_EMBED_MODEL


def add_parser(sub) -> None:
    p = sub.add_parser("dedupe", help="exact and near-duplicate images of a folder or an index",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE", help="folder, list file or glob to index first")
    p.add_argument("--db", default=None, metavar="PATH", help="index folder (made by vfm index, or made here from SOURCE)")
    p.add_argument("--model", default=DEFAULT_EMBED_MODEL, help=f"embedding model for SOURCE (default {DEFAULT_EMBED_MODEL})")
    p.add_argument("--threshold", type=float, default=0.95, help="cosine similarity of near duplicates (default 0.95)")
    p.add_argument("--keep", default=None, choices=["first", "largest"],
                   help="print the files that could be removed, keeping the first (scan order) or largest of each cluster")
    p.add_argument("--workers", type=int, default=1, help="embed SOURCE in N processes (default 1)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print the clusters as one JSON document")
    p.add_argument("--out", metavar="DIR", default=None, help="write cluster_NNNN.png contact sheets and dedupe.json")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile

    from vfm.errors import PromptError

    if args.source is None and args.db is None:
        raise PromptError("give a SOURCE folder to index and check, or --db PATH of an index")
    if not (-1.0 <= args.threshold <= 1.0):
        raise PromptError(f"--threshold {args.threshold} is not a cosine similarity; give a number in [-1, 1], e.g. 0.95")
    out = None
    if args.out:
        from vfm.cli.common import out_dir

        out = out_dir(args.out)
    tmp = None
    db_path = args.db
    unreadable = 0
    if args.source is not None:
        from vfm.search.indexer import build_index

        if db_path is None:
            tmp = tempfile.TemporaryDirectory(prefix="vfm-dedupe-")
            db_path = tmp.name + "/index"
        report = build_index(args.source, db_path, {"model": args.model, "pooling": "cls", "precision": "fp32"},
                             workers=args.workers, device=args.device)
        for err in report.errors:
            sys.stderr.write(f"vfm dedupe: skipped {err[0]}: {err[1]}\n")
        unreadable = len(report.errors)
    try:
        from vfm.search.db import IndexDB
        from vfm.search.dedupe import find_duplicates

        db = IndexDB(db_path)
        try:
            db.dim  # noqa: B018 - a db without vectors is a one-line error
            result = find_duplicates(db, threshold=args.threshold, keep=args.keep or "first")
        finally:
            db.close()
        if out is not None:
            _sheets(result, db_path, out)
            write_json(out / "dedupe.json", result)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        print_json(result)
    elif args.keep:
        for name in result["removable"]:
            print(name)
    else:
        print(f"{result['images']} images: {len(result['exact'])} groups of exact duplicates, "
              f"{len(result['near'])} near-duplicate clusters (cosine >= {args.threshold}); "
              f"{len(result['removable'])} files could go (--keep first|largest lists them)")
        for c in result["exact"]:
            print("exact: " + ", ".join(f["file_name"] for f in c["files"]))
        for c in result["near"]:
            print(f"near ({c['min_score']:.3f}..{c['max_score']:.3f}): " + ", ".join(f["file_name"] for f in c["files"]))
    return 1 if unreadable else 0


def _sheets(result, db_path, out) -> None:
    from vfm.search.db import IndexDB
    from vfm.search.sheet import write_sheet

    db = IndexDB(db_path)
    try:
        paths = dict(db.db.execute("SELECT name, path FROM files"))
    finally:
        db.close()
    for i, c in enumerate(result["exact"] + result["near"], start=1):
        kind = "exact" if "sha256" in c else "near"
        hits = [{"path": paths.get(f["file_name"]), "file_name": f["file_name"], "kind": "image", "rank": j,
                 "score": 1.0 if kind == "exact" else c["min_score"]} for j, f in enumerate(c["files"], start=1)]
        write_sheet(hits, out / f"cluster_{i:04d}.png", title=f"{kind} duplicates; keep {c['keep']}")
