"""Two torch stacks side by side on this CPU: encoder, click, segment everything, CLIP and memory.

    python bench/stacks.py --stack NAME=PYTHON[:TREE] --stack NAME=PYTHON[:TREE] [--rounds 3] [--threads 2]

    # issue 17: the torch 2.13.0 CPU wheel (vfm as it was before torchvision) vs 2.14.1 + torchvision 0.29.1
    git worktree add /tmp/vfm-0405c53 0405c53
    python bench/stacks.py --stack 2.13.0-cpu=/work/venv213/bin/python:/tmp/vfm-0405c53 \\
                           --stack 2.14.1-cu130=python3

Every measurement runs in a fresh child process of the named interpreter, with TREE (a vfm checkout;
default: this one) first on PYTHONPATH, alternating stacks per round (A B, B A, A B ...) so that the
shared machine's drift hits both; medians over rounds are printed. Per child, on the same SAM ViT-B
sized random checkpoint and CLIP ViT-B/32 sized random checkpoint (std 0.02 init, bench/_common.py):

* ``import torch``: seconds and RSS right after it (the cost every worker process pays);
* encoder fp32 / auto: ``Segmenter.embed`` on a 1024x1024 image (3 distinct images, median), with
  ``precision="fp32"`` and with the default (``auto``: bf16 autocast where the CPU has native bf16);
* click: ``Segmenter.predict`` with one point on the cached embedding, p50 of 30 after 5 warm-ups;
* everything: ``MaskGenerator(points_per_side=16).generate`` with the embedding cached (generate only),
  IoU and stability thresholds 0 so that random weights still give masks (box NMS stays 0.7);
* CLIP: ``Classifier.embed_images`` on 10 224x224 crops, fp32, median of 3;
* peak RSS of the child (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(threads: int) -> None:
    t0 = time.perf_counter()
    import torch

    out = {"import_torch_s": time.perf_counter() - t0, "import_torch_rss_mb": _status_kb("VmRSS") / 1024,
           "torch": torch.__version__}
    torch.set_num_threads(threads)
    sys.path.insert(0, str(HERE))
    import numpy as np

    from _common import bench_image, percentile, vit_b_checkpoint
    from recognition import clip_b32_dir

    import vfm
    from vfm.tasks.classify import Classifier
    from vfm.tasks.everything import MaskGenerator
    from vfm.tasks.segment import Segmenter

    out["vfm"] = str(Path(vfm.__file__).parent.parent)
    try:
        import torchvision

        out["torchvision"] = torchvision.__version__
    except Exception:  # noqa: BLE001 - the 2.13.0 CPU wheel has no matching torchvision
        out["torchvision"] = None
    d = str(vit_b_checkpoint())
    images = [bench_image(1024, seed=s) for s in range(4)]
    for precision in ("fp32", "auto"):
        seg = Segmenter.load(d, device="cpu", precision=precision)
        seg.embed(images[3])  # warm-up: first-call allocations
        times = []
        for im in images[:3]:
            t = time.perf_counter()
            seg.embed(im)
            times.append(time.perf_counter() - t)
        out[f"encoder_{precision}_s"] = statistics.median(times)
    # seg is the default (auto) one here; images[0] is embedded and cached
    _, emb = seg.embed(images[0])
    rng = np.random.RandomState(0)
    clicks = []
    with torch.inference_mode():
        for i, (x, y) in enumerate(rng.uniform(0, 1024, size=(35, 2))):
            t = time.perf_counter()
            seg.predict(points=[(x, y)], image=emb)
            if i >= 5:
                clicks.append((time.perf_counter() - t) * 1e3)
    out["click_p50_ms"] = percentile(clicks, 50)
    gen = MaskGenerator(seg, points_per_side=16, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    t = time.perf_counter()
    masks = gen.generate(images[0])
    out["everything_pps16_s"] = time.perf_counter() - t
    out["everything_masks"] = len(masks)
    clf = Classifier.load(str(clip_b32_dir()), device="cpu", precision="fp32")
    crops = [np.random.RandomState(i).randint(0, 255, (224, 224, 3), dtype=np.uint8) for i in range(10)]
    clf.embed_images(crops[:2])
    times = []
    for _ in range(3):
        t = time.perf_counter()
        clf.embed_images(crops)
        times.append(time.perf_counter() - t)
    out["clip_10_crops_s"] = statistics.median(times)
    out["peak_rss_mb"] = _status_kb("VmHWM") / 1024
    print("RESULT " + json.dumps(out), flush=True)


def run_child(python: str, tree: str | None, threads: int) -> dict:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--child", "--threads", str(threads)],
                          env=env, capture_output=True, text=True, cwd="/")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child {python} (tree {tree}) failed, exit {proc.returncode}:\n{proc.stderr[-3000:]}")


ROWS = [("import torch (s)", "import_torch_s", "{:.2f}"), ("RSS after import torch (MB)", "import_torch_rss_mb", "{:.0f}"),
        ("encoder fp32 (s)", "encoder_fp32_s", "{:.2f}"), ("encoder auto (s)", "encoder_auto_s", "{:.2f}"),
        ("click p50 (ms)", "click_p50_ms", "{:.1f}"), ("everything pps16 generate (s)", "everything_pps16_s", "{:.2f}"),
        ("CLIP B/32, 10 crops (s)", "clip_10_crops_s", "{:.3f}"), ("peak RSS of the process (MB)", "peak_rss_mb", "{:.0f}")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", action="append", default=[], metavar="NAME=PYTHON[:TREE]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.threads)
    if len(args.stack) < 2:
        raise SystemExit("give two or more --stack NAME=PYTHON[:TREE]")
    stacks = []
    for spec in args.stack:
        name, _, rest = spec.partition("=")
        python, _, tree = rest.partition(":")
        stacks.append((name, python, tree or None))
    # build the shared checkpoints once, on this interpreter, before timing anything
    sys.path.insert(0, str(HERE))
    from _common import vit_b_checkpoint
    from recognition import clip_b32_dir

    vit_b_checkpoint(), clip_b32_dir()
    results: dict[str, list[dict]] = {name: [] for name, _, _ in stacks}
    for r in range(args.rounds):
        order = stacks if r % 2 == 0 else stacks[::-1]
        for name, python, tree in order:
            res = run_child(python, tree, args.threads)
            results[name].append(res)
            print(f"round {r} {name}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in res.items()), flush=True)
    names = [n for n, _, _ in stacks]
    print(f"\nmedians over {args.rounds} rounds, {args.threads} threads, stacks alternated per round:")
    for n in names:
        first = results[n][0]
        print(f"  {n}: torch {first['torch']}, torchvision {first['torchvision']}, vfm from {first['vfm']}")
    print("| measure | " + " | ".join(names) + f" | {names[1]} / {names[0]} |")
    print("|---|" + "---:|" * (len(names) + 1))
    for label, key, fmt in ROWS:
        vals = [statistics.median(x[key] for x in results[n]) for n in names]
        print(f"| {label} | " + " | ".join(fmt.format(v) for v in vals) + f" | {vals[1] / vals[0]:.2f} |")
    masks = {n: sorted({x['everything_masks'] for x in results[n]}) for n in names}
    print("everything masks per stack: " + ", ".join(f"{n} {m}" for n, m in masks.items()))


if __name__ == "__main__":
    main()
