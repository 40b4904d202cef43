"""`vfm search --db PATH "text query" | --image Q.jpg | --id N [--k 20] [--json] [--out DIR]`.

Ranks the index's entries (whole images, and objects when it was built with --objects) by cosine
similarity to the query, embedded with the index's own model. Prints rank, score and file (JSON
with --json: {"query", "k", "hits": [{"rank", "score", "id", "kind", "file_name", "path", "width",
"height", "bbox"?, "segmentation"?, "category"?}], "timing_ms": {"embed", "search"}, "index"}).
--out DIR writes DIR/sheet.png (a grid of the hits, object hits outlined) and DIR/results.json.
"""

from __future__ import annotations

import argparse

from vfm.cli.common import print_json, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search an index by text, image or entry id",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="?", default=None, metavar="TEXT", help="a text query (CLIP / SigLIP indexes)")
    p.add_argument("--db", required=True, metavar="PATH", help="index folder made by vfm index")
    p.add_argument("--image", default=None, metavar="FILE", help="query by an image")
    p.add_argument("--id", type=int, default=None, metavar="N", help="query by an entry of the index (a hit's id)")
    p.add_argument("--k", type=int, default=20, help="number of results (default 20)")
    p.add_argument("--kind", default=None, choices=["image", "object"], help="only whole images, or only objects")
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--out", metavar="DIR", default=None, help="write sheet.png (contact sheet) and results.json")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse query images with more pixels (default 100M)")
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.errors import PromptError

    if args.k <= 0:
        raise PromptError(f"--k must be a positive number of results, got {args.k}")
    given = sum(x is not None for x in (args.text, args.image, args.id))
    if given != 1:
        raise PromptError('give exactly one query: "a text", --image FILE or --id N')
    out = None
    if args.out:
        from vfm.cli.common import out_dir

        out = out_dir(args.out)
    from vfm.search.query import Searcher

    searcher = Searcher(args.db, device=args.device)
    try:
        image = None
        if args.image is not None:
            from vfm.io.image import load_image

            image = load_image(args.image, max_pixels=args.max_pixels).pixels
        result = searcher.query(text=args.text, image=image, entry_id=args.id, k=args.k, kind=args.kind)
    finally:
        searcher.close()
    if out is not None:
        from vfm.search.sheet import write_sheet

        title = args.text or (f"image {args.image}" if args.image else f"entry {args.id}")
        write_sheet(result["hits"], out / "sheet.png", title=f"{title}: top {len(result['hits'])}")
        write_json(out / "results.json", result)
    if args.json:
        print_json(result)
        return 0
    for hit in result["hits"]:
        what = f" {hit['kind']} {hit.get('category') or ''} bbox={[round(v, 1) for v in hit['bbox']]}" if hit["kind"] == "object" else ""
        print(f"{hit['rank']:>3}  {hit['score']:.4f}  {hit['file_name']}{what}  (id {hit['id']})")
    t = result["timing_ms"]
    print(f"{len(result['hits'])} hits from {result['index']['vectors']} vectors ({result['index']['kind']}); "
          f"embed {t['embed']:.1f} ms, search {t['search']:.1f} ms" + (f"; wrote {out / 'sheet.png'}" if out else ""))
    return 0
