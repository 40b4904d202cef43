"""Segment everything on CPU: Meta's reference generator vs transformers' pipeline vs vfm, one process.

    python bench/everything.py [--points 16 32] [--thresholds default zero] [--tools ref hf vfm] [--reps 1]
    python bench/everything.py --memory [--memory-points 32] [--memory-tools vfm ref]

Same SAM ViT-B sized random weights (std 0.02 init, bench/_common.py), same 1024-px image. The image
encoder runs once per tool and is reported separately ("encode"); the generator runs then reuse that
embedding (the reference's predictor.set_image is made a no-op after the first call, vfm's Segmenter
caches embeddings by content), so "generate" is everything after the encoder and "end to end" adds
the encoder time back. Variants are interleaved per repetition (ref, vfm, ref, vfm...), medians.
"zero" thresholds: pred_iou_thresh = stability_score_thresh = 0 (nothing filtered; box NMS stays 0.7).
Agreement: vfm's mask count vs the reference's (±%), and the fraction of reference masks matched
one-to-one (Hungarian on mask IoU) by a vfm mask with IoU ≥ 0.9.

--memory runs `vfm everything` (and the reference) on a 2048x1536 image with crop_n_layers=1 in child
processes and prints their peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import bench_image, median, vit_b_checkpoint

THRESHOLDS = {"default": {}, "zero": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}}


def agreement(got_rles, ref_anns):
    from pycocotools import mask as mu
    from scipy.optimize import linear_sum_assignment

    if not ref_anns or not got_rles:
        return 1.0 if len(ref_anns) == len(got_rles) else 0.0
    enc = lambda r: {"size": list(r["size"]), "counts": r["counts"].encode() if isinstance(r["counts"], str) else r["counts"]}
    iou = mu.iou([enc(r) for r in got_rles], [enc(a["segmentation"]) for a in ref_anns], [0] * len(ref_anns))
    rows, cols = linear_sum_assignment(-iou)
    return float((iou[rows, cols] >= 0.9).sum() / len(ref_anns))


def try_pipeline(hf_model, processor_dir, image, pps, thresholds):
    """transformers' mask-generation pipeline as shipped (its torchvision image processor and NMS).

    Returns (seconds, n masks) or raises with the reason."""
    from PIL import Image
    from transformers import AutoImageProcessor, pipeline

    processor = AutoImageProcessor.from_pretrained(processor_dir)
    pipe = pipeline("mask-generation", model=hf_model, image_processor=processor, device="cpu")
    kw = {k: v for k, v in thresholds.items() if k in ("pred_iou_thresh", "stability_score_thresh")}
    t = time.perf_counter()
    out = pipe(Image.fromarray(image), points_per_batch=64, points_per_crop=pps, **kw)
    return time.perf_counter() - t, len(out["masks"])


def speed(args) -> None:
    import torch
    from transformers import SamModel

    from vfm.tasks.everything import MaskGenerator
    from vfm.tasks.segment import Segmenter
    from vfm.testing.meta_sam import meta_generator

    torch.set_num_threads(args.threads)
    d = vit_b_checkpoint()
    image = bench_image(1024)
    seg = Segmenter.load(str(d), device="cpu", precision="fp32")
    hf = seg.model.model
    enc = {}
    if "vfm" in args.tools:
        t = time.perf_counter(); seg.embed(image); enc["vfm"] = time.perf_counter() - t
    ref_gen_cache = {}
    if "ref" in args.tools:
        probe = meta_generator(hf)
        t = time.perf_counter(); probe.predictor.set_image(image); enc["ref"] = time.perf_counter() - t
        predictor = probe.predictor
        predictor.set_image = lambda *a, **k: None
        predictor.reset_image = lambda *a, **k: None
        ref_gen_cache["predictor"] = predictor
    print(f"encoder (fp32, once per tool): " + ", ".join(f"{k} {v:.1f} s" for k, v in enc.items()), flush=True)
    hf_model = SamModel.from_pretrained(d).eval() if "hf" in args.tools else None
    from segment_anything import SamAutomaticMaskGenerator

    rows = []
    for pps in args.points:
        for th in args.thresholds:
            kw = dict(points_per_side=pps, **THRESHOLDS[th])
            times = {"ref": [], "vfm": []}
            ref_out = vfm_out = None
            for _ in range(args.reps):
                if "ref" in args.tools:
                    gen = SamAutomaticMaskGenerator(ref_gen_cache["predictor"].model, output_mode="coco_rle", **kw)
                    gen.predictor = ref_gen_cache["predictor"]
                    t = time.perf_counter(); ref_out = gen.generate(image); times["ref"].append(time.perf_counter() - t)
                    print(f"  pps {pps} {th}: ref {times['ref'][-1]:.1f} s, {len(ref_out)} masks", flush=True)
                if "vfm" in args.tools:
                    g = MaskGenerator(seg, **kw)
                    t = time.perf_counter(); vfm_out = g.generate(image); times["vfm"].append(time.perf_counter() - t)
                    tm = ", ".join(f"{k} {v:.1f}" for k, v in g.timings.items())
                    print(f"  pps {pps} {th}: vfm {times['vfm'][-1]:.1f} s ({tm}), {len(vfm_out)} masks", flush=True)
            if hf_model is not None:  # end to end: the pipeline embeds the image itself
                try:
                    sec, n = try_pipeline(hf_model, d, image, pps, THRESHOLDS[th])
                    print(f"  pps {pps} {th}: transformers mask-generation pipeline {sec:.1f} s end to end, {n} masks", flush=True)
                    rows.append(f"pps {pps:>2} thresholds {th:>7}: transformers pipeline end to end {sec:.1f} s, {n} masks")
                except Exception as e:  # noqa: BLE001 - reported, the bench goes on
                    print(f"transformers mask-generation pipeline could not run: {type(e).__name__}: "
                          f"{' '.join(str(e).split())[:300]}", flush=True)
            r = {k: median(v) for k, v in times.items() if v}
            line = f"pps {pps:>2} thresholds {th:>7}:"
            for k in ("ref", "vfm"):
                if k in r:
                    line += f" {k} generate {r[k]:.1f} s, end to end {r[k] + enc[k]:.1f} s;"
            if len(r) == 2:
                line += f" speed-up generate {r['ref'] / r['vfm']:.2f}x, end to end {(r['ref'] + enc['ref']) / (r['vfm'] + enc['vfm']):.2f}x;"
                dn = (len(vfm_out) - len(ref_out)) / max(len(ref_out), 1) * 100
                line += f" masks ref {len(ref_out)} vfm {len(vfm_out)} ({dn:+.1f}%), matched {agreement(vfm_out.rles, ref_out) * 100:.1f}%"
            print(line, flush=True)
            rows.append(line)
    print("\nsummary (2 threads, shared machine):")
    for line in rows:
        print(line)


def memory_child(tool: str, pps: int, path: str) -> None:
    if tool == "vfm":
        from vfm.cli.main import main

        sys.argv = ["vfm"]
        main(["everything", path, "--model", str(vit_b_checkpoint()), "--crop-n-layers", "1", "--points-per-side", str(pps),
              "--precision", "fp32", "--quiet", "--out", tempfile.mkdtemp()])
    else:
        from transformers import SamModel

        from vfm.io.image import load_image
        from vfm.testing.meta_sam import meta_generator

        gen = meta_generator(SamModel.from_pretrained(vit_b_checkpoint()).eval(), crop_n_layers=1, points_per_side=pps,
                             output_mode="coco_rle")
        print(len(gen.generate(load_image(path).pixels)), "masks")


def memory(args) -> None:
    from PIL import Image

    vit_b_checkpoint()
    big = np.concatenate([np.concatenate([bench_image(1024, s) for s in (0, 1)], 1)] * 2, 0)[:1536, :2048]
    path = Path(tempfile.mkdtemp()) / "big.png"
    Image.fromarray(big).save(path)
    for tool in args.memory_tools:
        t = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, "--memory-child", tool, "--memory-points", str(args.memory_points), str(path)])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024  # max over children so far
        print(f"{tool}: 2048x1536, crop_n_layers=1, points_per_side {args.memory_points}: rc {p.returncode}, "
              f"{time.perf_counter() - t:.0f} s, peak RSS {peak:.2f} GiB (max over children so far)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--thresholds", nargs="+", choices=list(THRESHOLDS), default=["default", "zero"])
    ap.add_argument("--tools", nargs="+", choices=["ref", "hf", "vfm"], default=["ref", "hf", "vfm"])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--memory-points", type=int, default=32)
    ap.add_argument("--memory-tools", nargs="+", choices=["vfm", "ref"], default=["vfm", "ref"])
    ap.add_argument("--memory-child", default=None)
    ap.add_argument("path", nargs="?")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.memory_points, args.path)
    elif args.memory:
        memory(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
