"""Latency of one click (one positive point → one mask) with the image embedding cached.

    python bench/click.py [--clicks 60] [--size 1024] [--threads N]

On a SAM ViT-B sized model with random weights (the embedding is computed once before timing),
interleaved click by click:
- ``vfm click``: `Segmenter.predict` end to end (prompt encoding, mask decoding, upscaling to the
  original image, thresholding, box, result type);
- ``vfm decoder``: `SamAdapter.decode` alone (vfm's rearranged decoder, `vfm/models/sam_decoder.py`);
- ``transformers decoder``: `SamModel(image_embeddings=..., input_points=...)`, the same decoder
  as transformers runs it (the baseline).
Prints p50 and p95 in ms, the decoder speed-up, and the largest logit difference between the two
decoders. Target (issue 3): click p50 <= 30 ms on the 2-core CPU.
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

    from vfm.tasks.segment import Segmenter

    seg = Segmenter.load(str(vit_b_checkpoint()), device="cpu")
    image = bench_image(args.size)
    t0 = time.perf_counter()
    _, emb = seg.embed(image)
    print(f"image embedding (once): {time.perf_counter() - t0:.2f} s")
    adapter = seg.model
    image_embeddings = emb.tensors["image_embeddings"]
    rng = np.random.RandomState(0)
    points = rng.uniform(0, args.size, size=(args.clicks + 5, 2))
    times: dict[str, list[float]] = {"vfm click": [], "vfm decoder": [], "transformers decoder": []}
    max_diff = 0.0
    with torch.inference_mode():
        for i, (x, y) in enumerate(points):
            t = time.perf_counter()
            res = seg.predict(points=[(x, y)], image=emb)
            t_click = time.perf_counter() - t
            assert len(res) == 1
            pts = torch.from_numpy(adapter.coords_to_model(np.array([[[x, y]]]), emb.frame))
            labels = torch.ones((1, 1), dtype=torch.int64)
            t = time.perf_counter()
            low, _ = adapter.decode(emb, pts, labels, None, None, False)
            t_dec = time.perf_counter() - t
            t = time.perf_counter()
            ref = adapter.model(image_embeddings=image_embeddings, input_points=pts[:, None], input_labels=labels[:, None],
                                multimask_output=False).pred_masks[:, 0]
            t_ref = time.perf_counter() - t
            max_diff = max(max_diff, float((low - ref).abs().max()))
            if i >= 5:  # warm-up
                times["vfm click"].append(t_click * 1e3)
                times["vfm decoder"].append(t_dec * 1e3)
                times["transformers decoder"].append(t_ref * 1e3)
    print(f"clicks: {args.clicks}, image {args.size}x{args.size}, threads {torch.get_num_threads()}")
    for name, v in times.items():
        print(f"{name:22s} p50 {percentile(v, 50):6.1f} ms   p95 {percentile(v, 95):6.1f} ms")
    ratio = percentile(times["transformers decoder"], 50) / percentile(times["vfm decoder"], 50)
    print(f"decoder speed-up (p50 transformers / p50 vfm): {ratio:.2f}x; max |logit difference| {max_diff:.2e}")
    p50 = percentile(times["vfm click"], 50)
    print(f"target click p50 <= 30 ms: {'met' if p50 <= 30 else 'NOT met'} ({p50:.1f} ms)")


if __name__ == "__main__":
    main()
