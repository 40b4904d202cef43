"""Latency of one click (one positive point → one mask) with the image embedding cached.

    python bench/click.py [--clicks 60] [--size 1024] [--threads N] [--peers] [--load K]

On a SAM ViT-B sized model with random weights (the embedding is computed once before timing),
interleaved click by click:
- ``vfm click``: `Segmenter.predict` end to end (prompt encoding, mask decoding, upscaling to the
  original image, thresholding, box, result type);
- ``vfm decoder``: `SamAdapter.decode` alone (vfm's rearranged decoder, `vfm/models/sam_decoder.py`);
- ``transformers decoder``: `SamModel(image_embeddings=..., input_points=...)`, the same decoder
  as transformers runs it (the baseline).

``--peers`` (issue #21) adds, on the same weights and threads:
- ``Meta ONNX decoder (ORT)``: segment-anything's `SamOnnxModel` (the SAM demo's and CVAT's browser
  decoder: single mask, upscaled to the original size) exported as Meta's script does, in ONNX
  Runtime with every graph optimization;
- ``vfm decoder.onnx (ORT)``: the graph the web page runs in the browser
  (`vfm/models/backends/decoder_export.py`: single mask, upscaled to the original size), in ONNX
  Runtime. Both do what ``vfm click`` does up to the thresholded mask.

``--load K`` runs K busy processes (single-threaded matrix products) for the whole measurement: a
shared, busy host. Prints p50 and p95 in ms, the decoder speed-up, and the largest logit difference
between the two torch decoders. Target (issue 3): click p50 <= 30 ms on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _common import bench_image, percentile, vit_b_checkpoint


def _busy(stop) -> None:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    a = np.random.rand(256, 256)
    while not stop.is_set():
        a = a @ a
        a /= np.abs(a).max() + 1.0


def meta_onnx_session(hf_model, threads: int, path: Path):
    """Meta's SamOnnxModel (return_single_mask, upscaled to orig_im_size), exported like
    segment-anything's scripts/export_onnx_model.py (opset 17, dynamic point count)."""
    import onnxruntime as ort
    from segment_anything.utils.onnx import SamOnnxModel

    from vfm.testing.meta_sam import meta_sam_from_hf

    model = SamOnnxModel(meta_sam_from_hf(hf_model), return_single_mask=True)
    embed_dim, side = 256, 64
    dummy = {"image_embeddings": torch.randn(1, embed_dim, side, side), "point_coords": torch.randint(0, 1024, (1, 5, 2)).float(),
             "point_labels": torch.randint(0, 4, (1, 5)).float(), "mask_input": torch.randn(1, 1, 4 * side, 4 * side),
             "has_mask_input": torch.tensor([1.0]), "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float)}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(dummy.values()), str(path), input_names=list(dummy), output_names=["masks", "iou_predictions", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
                          opset_version=17, do_constant_folding=True, dynamo=False)
    return _session(path, threads)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=60)
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--peers", action="store_true", help="also Meta's ONNX decoder and vfm's decoder.onnx in ONNX Runtime")
    ap.add_argument("--load", type=int, default=0, metavar="K", help="K busy processes compete for the CPU meanwhile")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    from vfm.tasks.segment import Segmenter

    seg = Segmenter.load(str(vit_b_checkpoint()), device="cpu")
    image = bench_image(args.size)
    t0 = time.perf_counter()
    _, emb = seg.embed(image)
    print(f"image embedding (once): {time.perf_counter() - t0:.2f} s")
    adapter = seg.model
    image_embeddings = emb.tensors["image_embeddings"]
    names = ["vfm click", "vfm decoder", "transformers decoder"]
    sessions = {}
    if args.peers:
        from vfm.models.backends.decoder_export import export_decoder

        tmp = Path(tempfile.mkdtemp())
        sessions["Meta ONNX decoder (ORT)"] = meta_onnx_session(adapter.model, threads, tmp / "meta.onnx")
        sessions["vfm decoder.onnx (ORT)"] = _session(export_decoder(adapter.model, adapter.prep.image_size, tmp / "vfm.onnx"),
                                                      threads)
        names += list(sessions)
    h, w = emb.frame.original_size
    ih, iw = emb.frame.input_size
    emb_np = image_embeddings.float().numpy()
    rng = np.random.RandomState(0)
    points = rng.uniform(0, args.size, size=(args.clicks + 5, 2))
    times: dict[str, list[float]] = {n: [] for n in names}
    agree: list[float] = []
    max_diff = 0.0
    stop = mp.Event()
    workers = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(args.load)]
    for p in workers:
        p.start()
    try:
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
                got = {"vfm click": t_click, "vfm decoder": t_dec, "transformers decoder": t_ref}
                coords = pts.numpy().astype(np.float32)
                for name, sess in sessions.items():
                    t = time.perf_counter()
                    if name.startswith("Meta"):  # Meta's convention: a padding point (0, 0, -1) without a box
                        feeds = {"image_embeddings": emb_np,
                                 "point_coords": np.concatenate([coords, np.zeros((1, 1, 2), np.float32)], 1),
                                 "point_labels": np.array([[1.0, -1.0]], np.float32),
                                 "mask_input": np.zeros((1, 1, 256, 256), np.float32), "has_mask_input": np.zeros(1, np.float32),
                                 "orig_im_size": np.array([h, w], np.float32)}
                        mask = sess.run(None, feeds)[0][0, 0] > 0
                    else:
                        feeds = {"image_embeddings": emb_np, "point_coords": coords, "point_labels": np.ones((1, 1), np.float32),
                                 "mask_input": np.zeros((1, 1, 256, 256), np.float32), "has_mask_input": np.zeros(1, np.float32),
                                 "input_size": np.array([ih, iw], np.int64), "orig_size": np.array([h, w], np.int64)}
                        mask = sess.run(None, feeds)[0][0, 0] > 0
                    got[name] = time.perf_counter() - t
                    if name.startswith("vfm"):
                        union = (mask | res.masks[0]).sum()
                        agree.append(1.0 if union == 0 else (mask & res.masks[0]).sum() / union)
                if i >= 5:  # warm-up
                    for name, v in got.items():
                        times[name].append(v * 1e3)
    finally:
        stop.set()
        for p in workers:
            p.join(timeout=5)
    print(f"clicks: {args.clicks}, image {args.size}x{args.size}, threads {threads}, competing busy processes {args.load}")
    for name, v in times.items():
        print(f"{name:26s} p50 {percentile(v, 50):7.1f} ms   p95 {percentile(v, 95):7.1f} ms")
    ratio = percentile(times["transformers decoder"], 50) / percentile(times["vfm decoder"], 50)
    print(f"decoder speed-up (p50 transformers / p50 vfm): {ratio:.2f}x; max |logit difference| {max_diff:.2e}")
    if agree:
        print(f"vfm decoder.onnx vs vfm click masks: mean IoU {np.mean(agree):.4f} (min {np.min(agree):.4f})")
    p50 = percentile(times["vfm click"], 50)
    print(f"target click p50 <= 30 ms: {'met' if p50 <= 30 else 'NOT met'} ({p50:.1f} ms)")


if __name__ == "__main__":
    main()
