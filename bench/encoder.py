"""Image encoder: plain fp32 transformers vs vfm's default CPU path, and what it does to masks.

    python bench/encoder.py [--reps 3] [--size 1024] [--floor]

Each variant runs in its own child process (so allocator settings, which are process-wide, are
honest), alternating baseline / vfm / baseline / vfm ... on a SAM ViT-B sized model with random
weights (std 0.02 init). In each child: one warm-up call, then the best of two timed calls; the
printed times are medians over the repetitions of that (vfm: `Segmenter.embed`, which also
preprocesses). Then both embeddings go through the same fp32 decoder for a grid of 16 point prompts
(multimask, 48 masks) and the mean mask IoU between the two is printed.

Baseline: transformers' `SamModel.from_pretrained(...).get_image_embeddings` in fp32 with glibc
malloc untouched (VFM_TUNE_MALLOC=0). vfm default: `Segmenter.embed` with `precision="auto"` (bf16
autocast on CPUs with native bf16 — AVX512-BF16/AMX — else fp32), the runtime allocator tuning and
the rearranged ViT layers of `vfm/models/sam_encoder.py` (exact: same arithmetic per query).

``--floor`` adds a third child, alternating with the other two: the encoder's matrix products
alone (fp32, hot, no bias/norms/activations; see `products_floor`). baseline / floor is the largest
speed-up any fp32 encoder can reach on this CPU with torch's matrix products.

``--peers`` (issue #21) adds what CPU users run instead, interleaved in the same run on the same
weights and threads, each through vfm's backends (`vfm/models/backends`) so the export is the one
vfm caches: ``ort-fp32`` (the encoder exported with torch.onnx.export, ONNX Runtime with every graph
optimization), ``ort-int8`` (dynamic quantization of the weights, QInt8, as X-AnyLabeling ships),
``ov-fp32`` (OpenVINO reading the same ONNX, f32 inference precision) and ``ov-int8`` (NNCF 8-bit
weight compression). Each child prints its peak RSS too. Per variant: seconds, ratio to
transformers, embedding cosine and mean mask IoU of the 48 masks against transformers fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import bench_image, median, vit_b_checkpoint


def products_floor(size: int) -> float:
    """Seconds for the matrix products of one ViT encoder forward alone (fp32, hot, best shapes).

    The patch embedding, every layer's q/k/v, output and MLP products over all tokens, attention
    as SDPA *without* the relative-position bias (global layers: all tokens; windowed layers: the
    padded windows), and the neck's convolutions, on random tensors of the checkpoint's sizes. No
    norms, activations, bias terms or copies: no fp32 encoder that does these products can be faster
    on this CPU, so baseline / floor bounds the speed-up any fp32 implementation can reach here."""
    import torch
    import torch.nn.functional as F
    from transformers import SamConfig

    vc = SamConfig.from_pretrained(str(vit_b_checkpoint())).vision_config
    torch.manual_seed(0)
    c, heads, mlp, ps, ws = vc.hidden_size, vc.num_attention_heads, vc.mlp_dim, vc.patch_size, vc.window_size
    side = size // ps
    t, d = side * side, c // heads
    nw = (-(-side // ws)) ** 2  # windows of the padded grid
    pixels = torch.randn(1, vc.num_channels, size, size)
    patch_w = torch.randn(c, vc.num_channels, ps, ps) * 0.02
    tokens = torch.randn(t, c)
    w_qkv, w_proj = torch.randn(3 * c, c) * 0.02, torch.randn(c, c) * 0.02
    w1, w2 = torch.randn(mlp, c) * 0.02, torch.randn(c, mlp) * 0.02
    hidden = torch.randn(t, mlp)
    qg = torch.randn(1, heads, t, d)
    qw = torch.randn(nw, heads, ws * ws, d)
    neck1, neck2 = torch.randn(vc.output_channels, c, 1, 1) * 0.02, torch.randn(vc.output_channels, vc.output_channels, 3, 3) * 0.02
    grid = torch.randn(1, c, side, side)
    grid2 = torch.randn(1, vc.output_channels, side, side)

    def forward() -> None:
        F.conv2d(pixels, patch_w, stride=ps)
        for i in range(vc.num_hidden_layers):
            F.linear(tokens, w_qkv)
            if i in vc.global_attn_indexes:
                F.scaled_dot_product_attention(qg, qg, qg)
            else:
                F.scaled_dot_product_attention(qw, qw, qw)
            F.linear(tokens, w_proj)
            F.linear(tokens, w1)
            F.linear(hidden, w2)
        F.conv2d(grid, neck1)
        F.conv2d(grid2, neck2, padding=1)

    with torch.inference_mode():
        forward()  # warm-up
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            forward()
            best = min(best, time.perf_counter() - t0)
    return best


def child(variant: str, size: int, out: str) -> None:
    import torch

    if variant == "floor":
        print(json.dumps({"seconds": products_floor(size), "encoder_dtype": "torch.float32"}))
        return

    from vfm.tasks.segment import Segmenter

    image = bench_image(size)
    if variant in PEERS:
        backend, precision = PEERS[variant]
        seg = Segmenter.load(str(vit_b_checkpoint()), device="cpu", precision=precision, backend=backend)
        dt, e = _timed(seg, image, size)
        np.save(out, e.tensors["image_embeddings"].float().numpy())
        print(json.dumps({"seconds": dt, "encoder_dtype": precision, "rss_mb": _rss_mb()}))
        return
    if variant == "baseline":
        from transformers import SamModel

        # preprocessing (not timed) from vfm, the model exactly as transformers ships it
        pixel_values, _ = Segmenter.load(str(vit_b_checkpoint()), device="cpu", precision="fp32").model.preprocess(image)
        model = SamModel.from_pretrained(str(vit_b_checkpoint())).eval()
        dtype = "torch.float32"
        with torch.inference_mode():
            model.get_image_embeddings(pixel_values)  # warm-up
            dt = float("inf")
            for _ in range(2):
                t = time.perf_counter()
                emb = model.get_image_embeddings(pixel_values)
                dt = min(dt, time.perf_counter() - t)
    else:
        seg = Segmenter.load(str(vit_b_checkpoint()), device="cpu", precision="fp32" if variant == "vfm-fp32" else "auto")
        dtype = str(seg.model.encoder_dtype)
        dt, e = _timed(seg, image, size)
        emb = e.tensors["image_embeddings"]
    np.save(out, emb.float().numpy())
    print(json.dumps({"seconds": dt, "encoder_dtype": dtype, "rss_mb": _rss_mb()}))


def _timed(seg, image, size: int):
    """One warm-up call (engines allocate their arenas there), then the best of 2 timed calls; each on a
    fresh image (the embedding cache would answer a repeated one)."""
    seg.embed(bench_image(size, seed=1))
    best, emb = float("inf"), None
    for seed in (2, 0):
        pixels = image if seed == 0 else bench_image(size, seed=seed)
        t = time.perf_counter()
        _, e = seg.embed(pixels)
        best = min(best, time.perf_counter() - t)
        emb = e
    return best, emb


#: --peers: variant -> (vfm backend, precision)
PEERS = {"ort-fp32": ("onnxruntime", "fp32"), "ort-int8": ("onnxruntime", "int8"),
         "ov-fp32": ("openvino", "fp32"), "ov-int8": ("openvino", "int8")}


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--floor", action="store_true",
                    help="also time the encoder's matrix products alone (fp32), which bound any fp32 speed-up here")
    ap.add_argument("--peers", action="store_true",
                    help="also ONNX Runtime fp32 / int8 and OpenVINO fp32 / int8, interleaved, with their fidelity")
    ap.add_argument("--variants", default=None,
                    help="comma-separated subset to run, e.g. baseline,vfm-fp32,ov-fp32 (vfm-fp32: vfm's torch path "
                         "forced to fp32; baseline is always run)")
    ap.add_argument("--child", choices=["baseline", "vfm", "vfm-fp32", "floor", *PEERS], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.size, args.out)

    vit_b_checkpoint()  # build once before timing
    tmp = Path(tempfile.mkdtemp())
    variants = ("baseline", "vfm", "floor") if args.floor else ("baseline", "vfm")
    if args.peers:
        variants += tuple(PEERS)
    if args.variants:
        variants = ("baseline", *[v for v in args.variants.split(",") if v and v != "baseline"])
    rss: dict[str, float] = {}
    times: dict[str, list[float]] = {v: [] for v in variants}
    dtype = None
    for rep in range(args.reps):
        for variant in variants:
            env = dict(os.environ)
            env["VFM_TUNE_MALLOC"] = "0" if variant == "baseline" else "1"
            if variant in PEERS:  # export / quantize once, before its first timed run (vfm's cache)
                from vfm.tasks.segment import Segmenter

                Segmenter.load(str(vit_b_checkpoint()), device="cpu", precision=PEERS[variant][1], backend=PEERS[variant][0])
            out = tmp / f"{variant}.npy"
            r = subprocess.run([sys.executable, __file__, "--child", variant, "--size", str(args.size), "--out", str(out)],
                               capture_output=True, text=True, env=env, check=True)
            info = json.loads(r.stdout.strip().splitlines()[-1])
            times[variant].append(info["seconds"])
            rss[variant] = max(rss.get(variant, 0.0), info.get("rss_mb", 0.0))
            if variant == "vfm":
                dtype = info["encoder_dtype"]
            print(f"rep {rep}: {variant:8s} {info['seconds']:.2f} s", flush=True)

    import torch

    from vfm.models.promptable import Embedding
    from vfm.tasks.prompts import Prompt
    from vfm.tasks.segment import Segmenter

    seg = Segmenter.load(str(vit_b_checkpoint()), device="cpu", precision="fp32")
    frame = seg.model.frame_for(args.size, args.size)
    grid = [(args.size * (i + 0.5) / 4, args.size * (j + 0.5) / 4) for i in range(4) for j in range(4)]
    prompts = [Prompt(points=[p]) for p in grid]
    masks = {}
    for variant in [v for v in ("baseline", "vfm") if v in variants]:
        emb = Embedding({"image_embeddings": torch.from_numpy(np.load(tmp / f"{variant}.npy"))}, frame)
        masks[variant] = seg.predict_batch(prompts, multimask=True, image=emb).masks
    base = median(times["baseline"])
    print(f"\nSAM ViT-B sized encoder, {args.size}x{args.size}, {torch.get_num_threads()} threads, {args.reps} reps (medians)")
    print(f"fp32 transformers (plain malloc): {base:6.2f} s")
    if "vfm" in variants:
        diff = float(np.abs(np.load(tmp / "baseline.npy") - np.load(tmp / "vfm.npy")).max())
        ious = []
        for a, b in zip(masks["baseline"], masks["vfm"]):
            union = (a | b).sum()
            ious.append(1.0 if union == 0 else (a & b).sum() / union)
        fast = median(times["vfm"])
        print(f"vfm default ({dtype}, tuned malloc, rearranged attention): {fast:6.2f} s")
        print(f"speed-up: {base / fast:.2f}x   mean mask IoU vs fp32: {np.mean(ious):.4f} (min {np.min(ious):.4f}, {len(ious)} masks)")
        print(f"max |embedding difference|: {diff:.3g}")
    if args.peers or args.variants:
        from vfm.models.backends.select import ENGINES  # noqa: F401  (the engines auto chooses among)

        ref = np.load(tmp / "baseline.npy").ravel()
        print(f"\n| variant | median s | vs transformers | embedding cosine | mean mask IoU (min) | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        for variant in [v for v in variants if v != "floor"]:
            e = np.load(tmp / f"{variant}.npy")
            cos = float(ref @ e.ravel() / (np.linalg.norm(ref) * np.linalg.norm(e)))
            if variant not in masks:
                emb = Embedding({"image_embeddings": torch.from_numpy(e)}, frame)
                masks[variant] = seg.predict_batch(prompts, multimask=True, image=emb).masks
            v_ious = [1.0 if not (a | b).any() else (a & b).sum() / (a | b).sum()
                      for a, b in zip(masks["baseline"], masks[variant])]
            t = median(times[variant])
            print(f"| {variant} | {t:.2f} | {base / t:.2f}x | {cos:.6f} | {np.mean(v_ious):.4f} ({np.min(v_ious):.4f}) | "
                  f"{rss.get(variant, 0):.0f} |")
    if args.floor and "vfm" in variants:
        floor = median(times["floor"])
        print(f"matrix products alone (fp32, no bias/norms/activations): {floor:6.2f} s: no fp32 encoder can beat "
              f"{base / floor:.2f}x here; vfm reaches {floor / fast:.0%} of that bound")


if __name__ == "__main__":
    main()
