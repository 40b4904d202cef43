"""Text -> masks per image: SAM 3 alone against Grounding DINO-T + SAM ViT-B, side by side in one run.

    python bench/sam3.py [--reps 2] [--size 1280x960] [--threads 2] [--classes "cat, remote control, person"]

Both on real-sized random-weight models (no weights can be downloaded here) loaded through the path a
hub id takes: SAM 3 at facebook/sam3's size (Sam3Config's defaults: ViT 1024 x 32 layers on 1008x1008,
CLIP-L-sized text encoder, 200 queries: 550M parameters, the detector of the 848M checkpoint), against the Grounded-SAM pair vfm ships by
default (Grounding DINO Swin-T, SAM ViT-B). Printed: median seconds per image over --reps calls after
one warm-up, end to end (`ConceptSegmenter.ground` / `Grounder.ground` with every class), and the ratio.
Random weights find nothing or everything at random, so the thresholds are set to keep the mask work
alike: SAM 3 keeps its top --keep instances per class, Grounded-SAM the detector's top --keep boxes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from _common import bench_image, median, vit_b_checkpoint
from recognition import bench_root, gdino_dir


def sam3_dir() -> Path:
    """A facebook/sam3-sized Sam3Model (random weights) with its processor, saved once."""
    from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    from vfm.testing.tiny_clip import clip_tokenizer

    d = bench_root() / "sam3-random"
    if not (d / "model.safetensors").exists():
        tok = clip_tokenizer(max_length=32)
        torch.manual_seed(0)
        config = Sam3Config(text_config={"eos_token_id": tok.eos_token_id, "bos_token_id": tok.bos_token_id,
                                         "pad_token_id": tok.pad_token_id})
        Sam3Model(config).eval().save_pretrained(d)
        Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=tok).save_pretrained(d)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--size", default="1280x960")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--classes", default="cat, remote control, person")
    ap.add_argument("--keep", type=int, default=5, help="instances kept per image (masks decoded and resized)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = map(int, args.size.split("x"))
    image = bench_image(max(w, h))[:h, :w].copy()

    from vfm.tasks.concept import ConceptSegmenter
    from vfm.tasks.ground import Grounder

    sam3 = ConceptSegmenter.load(str(sam3_dir()), device="cpu", precision="fp32")
    pair = Grounder.load(str(gdino_dir()), str(vit_b_checkpoint()), device="cpu", precision="fp32")
    n_classes = len([c for c in args.classes.split(",") if c.strip()])

    def run_sam3():
        sam3._features.clear()  # a new image each call: the vision encoder runs every time
        return sam3.ground(image, args.classes, box_threshold=0.0, max_detections=args.keep)

    def run_pair():
        pair.segmenter.cache = type(pair.segmenter.cache)(pair.segmenter.cache.max_bytes)  # embed again each call
        return pair.ground(image, args.classes, box_threshold=0.0, text_threshold=0.0, max_detections=args.keep)

    times = {"sam3": [], "gdino-t + sam-vit-b": []}
    for fn, key in ((run_sam3, "sam3"), (run_pair, "gdino-t + sam-vit-b")):
        fn()  # warm-up
    for _ in range(args.reps):  # interleaved, so drift in the machine's load hits both alike
        for fn, key in ((run_sam3, "sam3"), (run_pair, "gdino-t + sam-vit-b")):
            t0 = time.perf_counter()
            res = fn()
            times[key].append(time.perf_counter() - t0)
            assert len(res) == args.keep, (key, len(res))
    params = sum(p.numel() for p in sam3.adapter.model.parameters()) / 1e6
    print(f"image {w}x{h}, {n_classes} classes, {args.keep} masks kept, {args.threads} threads, fp32, reps {args.reps}")
    print(f"SAM 3 ({params:.0f}M params)")
    for key, values in times.items():
        print(f"  {key:22s} {median(values):7.2f} s/image  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    ratio = median(times["sam3"]) / median(times["gdino-t + sam-vit-b"])
    print(f"  sam3 / gdino-t + sam-vit-b = {ratio:.2f}")


if __name__ == "__main__":
    main()
