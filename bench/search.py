"""Index and search figures (issue #15): indexing speed, memory against the number of images, query latency.

    python bench/search.py                       # everything below, in one run
    python bench/search.py --parts index         # images/s: 1 process vs --workers 2 (tiny CLIP, 2,000 images)
    python bench/search.py --parts memory        # peak RSS of `vfm index`, 2,000 vs 20,000 images
    python bench/search.py --parts query --sizes 100000 1000000 --dim 768

* index: `vfm index` of N synthetic 64x64 PNGs with a tiny random CLIP (the embedding is not the
  cost being measured; reading, hashing, decoding, preprocessing, committing and the FAISS build are),
  once with 1 process and once with --workers 2, side by side; the ratio is printed.
* memory: peak RSS (ru_maxrss of the child) of `vfm index` over 2,000 and 20,000 images.
* query: synthetic L2-normalised vectors (random unit vectors: no structure, the hardest case for
  an approximate index; and a clustered set: 1,000 Gaussian clusters, closer to real embeddings),
  loaded into an index folder; p50 / p99 of 200 single queries and recall@10 against the exact
  ranking, for the exact (flat) and the approximate (IVF, nprobe tuned at build time) index.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_images(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for i in range(n):
        p = folder / f"{i // 1000:03d}" / f"img{i:06d}.png"
        if p.exists():
            continue
        p.parent.mkdir(exist_ok=True)
        arr = base.copy()
        arr[i % 64, :, :] = i % 251  # every file distinct
        arr[:, (i // 64) % 64, 0] = (i * 7) % 253
        Image.fromarray(arr).save(p, compress_level=1)


def run_index(src: Path, db: Path, model: Path, *extra: str) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MiB) of the child, and the --json summary."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c",
           "import resource, sys, json; from vfm.cli.main import main; rc = main(sys.argv[1:]); "
           "sys.stderr.write('RSS %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)",
           "index", str(src), "--model", str(model), "--db", str(db), "--json", "--quiet", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    rss = max(int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("RSS"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(rss, 0) / 1024, json.loads(r.stdout) | {"children_maxrss_mib": children / 1024}


def part_index(tmp: Path, model: Path, n: int, rounds: int) -> None:
    src = tmp / f"imgs{n}"
    make_images(src, n)
    print(f"\n## index: {n} images (64x64 PNG), tiny CLIP, 1 process vs --workers 2, {rounds} rounds interleaved")
    rates = {"1": [], "2": []}
    for r in range(rounds):
        for workers in ("1", "2"):
            db = tmp / f"db_w{workers}_{r}"
            wall, _, doc = run_index(src, db, model, "--workers", workers)
            rates[workers].append(n / wall)
            print(f"  round {r + 1} workers={workers}: {wall:6.1f} s wall, {n / wall:7.1f} images/s "
                  f"(in-process {doc['images_per_s']} images/s)")
    a, b = np.median(rates["1"]), np.median(rates["2"])
    print(f"  median: 1 process {a:.1f} images/s, --workers 2 {b:.1f} images/s, ratio {b / a:.2f}x")


def part_memory(tmp: Path, model: Path, sizes: list[int]) -> None:
    print(f"\n## memory: peak RSS of vfm index (1 process), {' vs '.join(map(str, sizes))} images")
    for n in sizes:
        src = tmp / f"imgs{n}"
        make_images(src, n)
        wall, rss, doc = run_index(src, tmp / f"mem{n}", model)
        print(f"  {n:>6} images: peak RSS {rss:7.1f} MiB, {wall:6.1f} s, {doc['vectors']} vectors")


def part_query(tmp: Path, sizes: list[int], dim: int, data: list[str]) -> None:
    from vfm.search import vectors
    from vfm.search.db import IndexDB

    rng = np.random.default_rng(0)
    for kind_of_data in data:
        for n in sizes:
            if kind_of_data == "random":
                x = rng.standard_normal((n, dim), dtype=np.float32)
                q = rng.standard_normal((200, dim), dtype=np.float32)
            else:
                centres = rng.standard_normal((1000, dim), dtype=np.float32)
                x = centres[rng.integers(0, 1000, n)] + 0.35 * rng.standard_normal((n, dim), dtype=np.float32)
                q = centres[rng.integers(0, 1000, 200)] + 0.35 * rng.standard_normal((200, dim), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            path = tmp / f"q_{kind_of_data}_{n}"
            db = IndexDB(path, create=True)
            db.check_embedder({"model": "synthetic", "family": "synthetic", "dim": dim, "pooling": "none",
                               "identity": kind_of_data, "text": False})
            for i in range(0, n, 100_000):
                db.put_vectors([f"v{j}" for j in range(i, min(n, i + 100_000))], x[i:i + 100_000])
            truth = None
            print(f"\n## query: {n} {kind_of_data} {dim}-d unit vectors, 200 single queries, k=10")
            for kind in ("flat", "ivf"):
                t0 = time.perf_counter()
                v = vectors.rebuild(db, kind, db.max_entry_id(), 0)
                build = time.perf_counter() - t0
                times, got = [], []
                for row in q:
                    t = time.perf_counter()
                    _, ids = v.search(row[None], 10)
                    times.append((time.perf_counter() - t) * 1000)
                    got.append(ids[0])
                if truth is None:
                    truth = got
                recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(got, truth)])
                extra = f", nprobe {v.nprobe}/{vectors._faiss().extract_index_ivf(v.index).nlist}" if kind == "ivf" else ""
                print(f"  {kind:4}: p50 {np.percentile(times, 50):7.2f} ms, p99 {np.percentile(times, 99):7.2f} ms, "
                      f"recall@10 {recall:.3f}, build {build:6.1f} s{extra}")
            db.close()
            del x
            import shutil

            shutil.rmtree(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["index", "memory", "query"], choices=["index", "memory", "query"])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--memory-sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--data", nargs="+", default=["random", "clustered"], choices=["random", "clustered"])
    ap.add_argument("--workdir", default=None, help="keep images here between runs (default: a temp folder)")
    args = ap.parse_args()
    import torch

    print(f"# bench/search.py on {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}")
    tmp_ctx = tempfile.TemporaryDirectory(prefix="vfm-bench-search-") if args.workdir is None else None
    tmp = Path(args.workdir or tmp_ctx.name)
    tmp.mkdir(parents=True, exist_ok=True)
    model = None
    if "index" in args.parts or "memory" in args.parts:
        from vfm.testing.tiny_clip import build_clip

        model = tmp / "clip"
        if not (model / "config.json").exists():
            build_clip(model)
    if "index" in args.parts:
        part_index(tmp, model, args.images, args.rounds)
    if "memory" in args.parts:
        part_memory(tmp, model, args.memory_sizes)
    if "query" in args.parts:
        part_query(tmp, args.sizes, args.dim, args.data)


if __name__ == "__main__":
    main()
