"""Latency of one click (one positive point → one mask) with the image embedding cached.

    python bench/click.py [--clicks 60] [--size 1024]

Measures `Segmenter.predict` end to end (prompt encoding, mask decoding, upscaling to the original
image, thresholding, box) on a SAM ViT-B sized model with random weights; the embedding is computed
once before timing. Prints p50 and p95 in ms, and the decoder-only share.
Target (issue 3): p50 <= 30 ms on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _common import bench_image, percentile, vit_b_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=60)
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from vfm.tasks.prompts import Prompt
    from vfm.tasks.segment import Segmenter

    seg = Segmenter.load(str(vit_b_checkpoint()), device="cpu")
    image = bench_image(args.size)
    t0 = time.perf_counter()
    _, emb = seg.embed(image)
    print(f"image embedding (once): {time.perf_counter() - t0:.2f} s")
    rng = np.random.RandomState(0)
    points = rng.uniform(0, args.size, size=(args.clicks + 5, 2))
    total, decoder = [], []
    for i, (x, y) in enumerate(points):
        t = time.perf_counter()
        res = seg.predict(points=[(x, y)], image=emb)
        dt = time.perf_counter() - t
        td = time.perf_counter()
        p = Prompt(points=[(x, y)])
        seg._decode_group(emb, [p], False)
        dd = time.perf_counter() - td
        assert len(res) == 1
        if i >= 5:  # warm-up
            total.append(dt * 1e3)
            decoder.append(dd * 1e3)
    print(f"clicks: {args.clicks}, image {args.size}x{args.size}, threads {torch.get_num_threads()}")
    print(f"click latency  p50 {percentile(total, 50):6.1f} ms   p95 {percentile(total, 95):6.1f} ms")
    print(f"decoder only   p50 {percentile(decoder, 50):6.1f} ms   p95 {percentile(decoder, 95):6.1f} ms")
    print(f"target p50 <= 30 ms: {'met' if percentile(total, 50) <= 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
