"""`vfm embed IMAGE|SOURCE... --model M [--out FILE.npy|FILE.parquet] [--text "a red car"] [--json]`.

L2-normalised embeddings, batched: CLIP / SigLIP / SigLIP 2 (image and text towers:
``get_image_features`` / ``get_text_features``) and DINOv2 / DINOv3 (images only; ``--pooling cls``:
the CLS token, ``mean``: the mean of the patch tokens). IMAGE may be files, folders or globs.

--out FILE.npy writes an N x D float32 array, rows in input order, and FILE.names.txt with one
name per row (texts as "text:<the text>"); --out FILE.parquet writes one row per input with columns
kind ("image" | "text"), name, width, height and embedding (list of float32). --json prints one
JSON document per input: {"kind", "name", "model", "dim", "embedding"}. Unreadable images are one
line each on stderr, left out, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys

from vfm.cli.common import print_json

DEFAULT_EMBED_MODEL = "clip-vit-base-32"  # as vfm.tasks.embed (not imported here: --help stays torch-free)
BATCH = 16


def add_parser(sub) -> None:
    p = sub.add_parser("embed", help="image (and text) embeddings: CLIP, SigLIP, DINOv2 / DINOv3",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders (recursive) or globs")
    p.add_argument("--model", default=DEFAULT_EMBED_MODEL,
                   help=f"embedding model: alias, hub id or local directory (default {DEFAULT_EMBED_MODEL}; "
                        "`vfm models --task embed`)")
    p.add_argument("--text", action="append", default=[], metavar="TEXT",
                   help="also embed this text (CLIP / SigLIP only); repeatable")
    p.add_argument("--pooling", default="cls", choices=["cls", "mean"],
                   help="DINOv2 / DINOv3: CLS token (default) or mean of the patch tokens")
    p.add_argument("--out", metavar="FILE", default=None, help="write FILE.npy (+ FILE.names.txt) or FILE.parquet")
    p.add_argument("--json", action="store_true", help="print one JSON document per image or text on stdout")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16", "fp16"],
                   help="model precision (default fp32: transformers' numbers)")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (default 100M)")
    p.add_argument("--quiet", action="store_true", help="no text output")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from vfm.cli.images import expand_images
    from vfm.errors import ImageError, PromptError, VfmError

    if not args.images and not args.text:
        raise PromptError("nothing to embed: give images, folders or globs, or --text \"a red car\"")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".npy", ".parquet"):
        raise PromptError(f"--out '{args.out}' must end in .npy or .parquet")
    if out is not None and out.suffix.lower() == ".parquet":
        from vfm.errors import require

        require("pyarrow", "search")
    items = expand_images(args.images) if args.images else []
    from vfm.io.image import load_image
    from vfm.tasks.embed import Embedder

    embedder = Embedder.load(args.model, device=args.device, precision=args.precision, pooling=args.pooling)
    if args.text and not embedder.has_text:
        embedder.embed_texts(args.text)  # raises the one-line error
    rows: list[dict] = []
    vectors: list[np.ndarray] = []
    failed = 0
    batch: list[tuple] = []

    def flush():
        if not batch:
            return
        vecs = embedder.embed_images([img.pixels for _, img in batch])
        for (item, img), v in zip(batch, vecs):
            emit({"kind": "image", "name": item.name, "width": img.width, "height": img.height}, v)
        batch.clear()

    def emit(row, vec):
        rows.append(row)
        vectors.append(vec)
        if args.json:
            print_json({**row, "model": args.model, "dim": int(vec.shape[0]), "embedding": [float(x) for x in vec]})

    for item in items:
        try:
            import os

            if not os.path.exists(item.path):
                raise ImageError(f"image file '{item.path}' does not exist")
            batch.append((item, load_image(item.path, max_pixels=args.max_pixels, name=item.name)))
        except VfmError as exc:
            if len(items) == 1 and not args.text:
                raise
            failed += 1
            sys.stderr.write(f"vfm embed: error: {exc}\n")
            continue
        if len(batch) >= BATCH:
            flush()
    flush()
    if args.text:
        for text, v in zip(args.text, embedder.embed_texts(args.text)):
            emit({"kind": "text", "name": text, "width": None, "height": None}, v)
    if out is not None and rows:
        _write(out, rows, np.stack(vectors))
    if not args.json and not args.quiet:
        n_img = sum(r["kind"] == "image" for r in rows)
        print(f"embedded {n_img} image(s) and {len(rows) - n_img} text(s) with {args.model}: {embedder.dim}-d, "
              f"L2-normalised" + (f"; wrote {out}" if out is not None and rows else ""))
    return 1 if failed else 0


def _write(out, rows, matrix) -> None:
    from vfm.formats._atomic import atomic_file

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        import numpy as np

        with atomic_file(out, mode="wb") as fh:
            np.save(fh, matrix.astype(np.float32))
        names = out.with_suffix(".names.txt")
        with atomic_file(names) as fh:
            for r in rows:
                fh.write((r["name"] if r["kind"] == "image" else "text:" + r["name"]).replace("\n", " ") + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "kind": [r["kind"] for r in rows], "name": [r["name"] for r in rows],
        "width": pa.array([r["width"] for r in rows], pa.int32()), "height": pa.array([r["height"] for r in rows], pa.int32()),
        "embedding": pa.array([list(map(float, v)) for v in matrix], pa.list_(pa.float32())),
    })
    with atomic_file(out, mode="wb") as fh:
        pq.write_table(table, fh)
