"""Throughput and peak memory of `vfm label` for 200 and 2,000 small images: 1 process, --workers 2, --ray.

    python bench/label.py [--sizes 200,2000] [--rounds 2] [--task tag|ground]

Each variant runs `vfm label` as a subprocess on the same synthetic folder (fresh OUT each time);
variants are interleaved (A, B, C, A, B, C, ...) and medians reported. Printed per variant:

* img/s: images committed per second between the first and the last commit (polled from
  OUT/state.sqlite), i.e. the steady labeling rate without model loading and Ray start-up;
* wall: the whole command, start-up and dataset writing included;
* driver peak RSS: the `vfm label` process alone (where results are collected and datasets written:
  this is what must stay constant in the number of images);
* "1proc" runs with --threads 1, "1proc-t2" with torch's default (2 threads here), workers and Ray
  actors with CPUs / workers = 1 thread each;
* tree peak RSS: the driver plus every descendant (worker processes, local Ray cluster), summed.

Models are tiny random ones built offline (``--task tag``: a tiny CLIP, the engine's cost dominates;
``--task ground``: tiny Grounding DINO + SAM, masks in every format). Memory is sampled every 0.1 s
from /proc.

``--stack NAME=PYTHON[:TREE]`` (repeatable) runs every variant under each interpreter, with TREE (a vfm
checkout) on PYTHONPATH, interleaved with the others: e.g. the torch 2.13.0 CPU wheel against the
2.14.1 CUDA build (issue 17), whose ``import torch`` alone is ~290 MB more per process.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM images WHERE status != 'pending'").fetchone()[0]
    except sqlite3.Error:
        return 0


def make_folder(root: Path, n: int) -> Path:
    d = root / f"images-{n}"
    if d.exists() and len(list(d.rglob("*.png"))) == n:
        return d
    rng = np.random.RandomState(0)
    for i in range(n):
        sub = d / f"{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        img = np.full((128, 160, 3), rng.randint(0, 255, 3), np.uint8)
        y, x = rng.randint(0, 100), rng.randint(0, 130)
        img[y:y + 28, x:x + 30] = rng.randint(0, 255, 3)
        Image.fromarray(img).save(sub / f"{i:05d}.png")
    return d


def run_variant(cmd: list[str], out: Path, n: int, tree: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=tree)
    t0 = time.perf_counter()
    # cwd outside any checkout: `python -m` puts the cwd first on sys.path, ahead of PYTHONPATH's tree
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=out.parent)
    peak_driver = peak_tree = 0
    first = last = None
    db = out / "state.sqlite"
    k = 0
    while proc.poll() is None:
        peak_driver = max(peak_driver, rss_kb(proc.pid))
        peak_tree = max(peak_tree, sum(rss_kb(p) for p in descendants(proc.pid)))
        k += 1
        if k % 3 == 0:
            c = committed(db)
            now = time.perf_counter()
            if c > 0 and first is None:
                first = (now, c)
            if c >= n and last is None:
                last = (now, c)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"variant failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.read()[-2000:]}")
    if last is None:
        last = (time.perf_counter(), committed(db))
    rate = (last[1] - first[1]) / (last[0] - first[0]) if first and last[0] > first[0] else float("nan")
    return {"rate": rate, "wall": wall, "driver_mb": peak_driver / 1024, "tree_mb": peak_tree / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,2000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--task", choices=["tag", "ground"], default="tag")
    ap.add_argument("--variants", default="1proc,workers2,ray")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "vfm-bench-label"))
    ap.add_argument("--stack", action="append", default=[], metavar="NAME=PYTHON[:TREE]",
                    help="run every variant under this interpreter with this vfm checkout first on PYTHONPATH "
                         "(repeatable, interleaved; default: this interpreter and this checkout)")
    args = ap.parse_args()
    here = str(Path(__file__).resolve().parents[1])
    stacks = []
    for spec in args.stack or [f"this={sys.executable}:{here}"]:
        name, _, rest = spec.partition("=")
        python, _, tree = rest.partition(":")
        stacks.append((name, python, tree or here))
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    if args.task == "tag":
        from vfm.testing.tiny_clip import build_clip

        clip = root / "tiny-clip"
        if not clip.exists():
            build_clip(clip, seed=0)
        model_args = ["--task", "tag", "--classes", "cat, dog, car, tree, sky", "--classifier", str(clip),
                      "--tag-threshold", "0", "--format", "coco,labelstudio"]
    else:
        from vfm.testing.tiny_detectors import build_grounding_dino
        from vfm.testing.tiny_models import build_sam

        gd, sam = root / "tiny-gdino", root / "tiny-sam"
        if not gd.exists():
            build_grounding_dino(gd, seed=0)
        if not sam.exists():
            build_sam(sam, image_size=256, seed=0)
        model_args = ["--task", "ground", "--classes", "cat, dog", "--detector", str(gd), "--segmenter", str(sam),
                      "--box-threshold", "0.99", "--precision", "fp32", "--format", "coco,yolo,labelstudio,masks"]
    variants = {"1proc": ["--threads", "1"], "1proc-t2": [], "workers2": ["--workers", "2"],
                "ray": ["--ray", "--workers", "2"]}
    chosen = [v for v in args.variants.split(",") if v]
    runs = [(f"{name}:{v}" if len(stacks) > 1 else v, python, tree, v) for v in chosen for name, python, tree in stacks]
    print(f"vfm label bench: task={args.task}, {os.cpu_count()} CPU(s), rounds={args.rounds}, variants interleaved")
    for n in [int(s) for s in args.sizes.split(",")]:
        src = make_folder(root, n)
        results: dict[str, list[dict[str, float]]] = {key: [] for key, *_ in runs}
        for r in range(args.rounds):
            for key, python, tree, v in runs:
                out = root / f"out-{n}-{key.replace(':', '-')}-{r}"
                if out.exists():
                    import shutil

                    shutil.rmtree(out)
                cmd = [python, "-m", "vfm.cli", "label", str(src), "--out", str(out), "--quiet",
                       *model_args, *variants[v]]
                res = run_variant(cmd, out, n, tree)
                results[key].append(res)
                print(f"  n={n} {key:<9} round {r}: {res['rate']:.1f} img/s, wall {res['wall']:.1f} s, "
                      f"driver {res['driver_mb']:.0f} MB, tree {res['tree_mb']:.0f} MB", flush=True)
        print(f"n={n} (medians of {args.rounds}):")
        first = runs[0][0]
        base = statistics.median(x["rate"] for x in results[first])
        for key, *_ in runs:
            med = {k: statistics.median(x[k] for x in results[key]) for k in ("rate", "wall", "driver_mb", "tree_mb")}
            print(f"  {key:<9} {med['rate']:7.1f} img/s ({med['rate'] / base:.2f}x {first})  wall {med['wall']:6.1f} s  "
                  f"driver peak RSS {med['driver_mb']:5.0f} MB  tree peak RSS {med['tree_mb']:6.0f} MB")


if __name__ == "__main__":
    main()
