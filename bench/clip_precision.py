"""CLIP ViT-B/32 image encoder on masked crops: fp32 vs bf16 autocast, interleaved (issue 5, helper C2).

Backs the advice in docs/recognition.md that bf16 is for GPUs: it times ``Classifier.embed_images``
on ``--crops`` 224x224 crops per round with a CLIP ViT-B/32 sized random checkpoint, alternating
fp32 and bf16 (A, B, A, B ...), and prints medians, the ratio and the cosine between the two
precisions' embeddings.

    python bench/clip_precision.py --crops 10 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _common import median
from recognition import clip_b32_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from vfm.tasks.classify import Classifier

    model_dir = clip_b32_dir()
    variants = {p: Classifier.load(str(model_dir), device="cpu", precision=p) for p in ("fp32", "bf16")}
    rng = np.random.RandomState(0)
    crops = [rng.randint(0, 255, (224, 224, 3), dtype=np.uint8) for _ in range(args.crops)]
    for clf in variants.values():  # warm-up
        clf.embed_images(crops[:2])
    times: dict[str, list[float]] = {p: [] for p in variants}
    embeds = {}
    for r in range(args.rounds):
        for p, clf in variants.items():
            t0 = time.perf_counter()
            embeds[p] = clf.embed_images(crops)
            times[p].append(time.perf_counter() - t0)
            print(f"round {r} {p}: {times[p][-1]:.2f} s", flush=True)
    fp32, bf16 = median(times["fp32"]), median(times["bf16"])
    cos = float((embeds["fp32"] * embeds["bf16"]).sum(1).min())
    print(f"{args.crops} crops, median of {args.rounds}: fp32 {fp32:.2f} s ({fp32 / args.crops * 1000:.0f} ms/crop), "
          f"bf16 {bf16:.2f} s ({bf16 / args.crops * 1000:.0f} ms/crop); bf16/fp32 = {bf16 / fp32:.2f}x; "
          f"min cosine fp32 vs bf16 embeddings {cos:.5f}")


if __name__ == "__main__":
    main()
