"""Image preprocessing per family: transformers' PIL processor vs its torchvision (fast) one vs vfm's own.

    python bench/processors.py [--reps 15] [--size 1280x960] [--threads 2]

For every family vfm runs, the processor is built with the defaults of the public checkpoint
(CLIP ViT-B/32 224 px, SigLIP 224, OWLv2 960, OWL-ViT 768, Grounding DINO 800/1333, Mask2Former and
OneFormer 800/1333, SAM 1024 longest side + pad, SAM 2 1024 square) and fed the same RGB uint8
photo-like image (default 1280x960), one image per call, as vfm calls it. Printed per family and
backend: median milliseconds per image over ``--reps`` interleaved calls, the first call's milliseconds, and the largest pixel
difference from the PIL processor in uint8 steps (``|a - b| * std * 255``, over all channels).
"vfm" is vfm's own preprocessing where it has one (SAM: PIL bilinear resize + normalise + pad, as
Meta's SamPredictor; SAM 2: torchvision's antialiased bilinear resize of the float image, as
Meta's SAM2Transforms).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import bench_image, median


def photo(h: int, w: int) -> np.ndarray:
    """Shapes and gradients (bench_image) with fine texture, so resampling differences show."""
    side = max(h, w)
    img = bench_image(side)[:h, :w].astype(np.float32)
    rng = np.random.RandomState(1)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def families():
    """name -> {backend: callable(pixels) -> pixel_values tensor}, and the std used to express steps."""
    import transformers as T

    from vfm.models.promptable import Preprocessing, PromptableModel

    class _Prep(PromptableModel):  # only preprocess() is used: vfm's own SAM / SAM 2 path
        def __init__(self, prep):
            import torch

            self.prep, self.device = prep, torch.device("cpu")

        def _encode(self, pixel_values):
            raise NotImplementedError

        def _decode(self, *a):
            raise NotImplementedError

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    sam = _Prep(Preprocessing(1024, mean, std, keep_aspect=True))
    sam2 = _Prep(Preprocessing(1024, mean, std, keep_aspect=False, resize="torchvision"))
    oneformer_kw = dict(ignore_index=255, do_reduce_labels=False, num_text=10,
                        metadata={"0": "wall", "1": "person", "thing_ids": [1]}, class_info_file=None)

    def pair(cls_fast, cls_pil, **kw):
        out = {"pil": cls_pil(**kw), "torchvision": cls_fast(**kw)}
        return {k: (lambda p: (lambda x: p(images=x, return_tensors="pt")["pixel_values"]))(v) for k, v in out.items()}

    def oneformer(cls):
        p = cls(**oneformer_kw)
        return lambda x: p(images=x, task_inputs=["semantic"], return_tensors="pt")["pixel_values"]

    rows = {
        "clip": pair(T.CLIPImageProcessor, T.CLIPImageProcessorPil),
        "siglip": pair(T.SiglipImageProcessor, T.SiglipImageProcessorPil),
        "owlv2": pair(T.Owlv2ImageProcessor, T.Owlv2ImageProcessorPil),
        "owlvit": pair(T.OwlViTImageProcessor, T.OwlViTImageProcessorPil),
        "grounding-dino": pair(T.GroundingDinoImageProcessor, T.GroundingDinoImageProcessorPil),
        "mask2former": pair(T.Mask2FormerImageProcessor, T.Mask2FormerImageProcessorPil),
        "oneformer": {"pil": oneformer(T.OneFormerImageProcessorPil), "torchvision": oneformer(T.OneFormerImageProcessor)},
        "sam": {**pair(T.SamImageProcessor, T.SamImageProcessorPil), "vfm": lambda x: sam.preprocess(x)[0]},
        "sam2": {"torchvision": (lambda p: lambda x: p(images=x, return_tensors="pt")["pixel_values"])(T.Sam2ImageProcessor()),
                 "vfm": lambda x: sam2.preprocess(x)[0]},
    }
    stds = {"clip": (0.26862954, 0.26130258, 0.27577711), "siglip": (0.5, 0.5, 0.5), "owlv2": (0.26862954, 0.26130258, 0.27577711),
            "owlvit": (0.26862954, 0.26130258, 0.27577711)}
    return rows, stds, std


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--size", default="1280x960", help="W x H of the test image")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    pixels = photo(h, w)
    rows, stds, default_std = families()
    print(f"image {w}x{h}, {args.reps} calls per backend, interleaved; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    print(f"{'family':<15} {'backend':<12} {'ms/image':>9} {'1st call':>9} {'max diff vs pil (uint8 steps)':>30}  shape")
    for name, backends in rows.items():
        std = torch.tensor(stds.get(name, default_std)).view(1, 3, 1, 1)
        outs, first = {}, {}
        for k, fn in backends.items():  # the first call (what a one-image CLI run pays), and the outputs compared
            t = time.perf_counter()
            outs[k] = fn(pixels)
            first[k] = time.perf_counter() - t
        times = {k: [] for k in backends}
        for _ in range(args.reps):
            for k, fn in backends.items():
                t = time.perf_counter()
                fn(pixels)
                times[k].append(time.perf_counter() - t)
        ref_key = "pil" if "pil" in outs else "torchvision"
        ref = outs[ref_key].float()
        for k, out in outs.items():
            out = out.float()
            if out.shape != ref.shape:
                diff = "shape differs"
            else:
                diff = f"{float(((out - ref).abs() * std * 255).max()):.2f}" + ("" if ref_key == "pil" else f" (vs {ref_key})")
            print(f"{name:<15} {k:<12} {median(times[k]) * 1e3:>9.1f} {first[k] * 1e3:>9.1f} {diff:>30}  {tuple(out.shape)}", flush=True)


if __name__ == "__main__":
    main()
