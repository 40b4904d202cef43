"""Video tracking: frames/s and peak memory of `vfm track`'s streaming tracker against transformers'
Sam2VideoModel session holding the whole video, for a short and a long video.

    python bench/track.py                              # 100 and 1000 frames, Hiera-T at 1024 input
    python bench/track.py --frames 100 1000 --input-size 256   # what fits a 2-core CPU in minutes

The video is a 1024x576 synthetic clip (moving shapes over texture) encoded once to H.264 with
PyAV; the model is a SAM 2.1 Hiera-T sized Sam2VideoModel (39M parameters, random weights, std
0.02), saved and loaded from disk like a hub checkpoint. One click prompts object 1 on frame 0.

- vfm: `VideoTracker.track` over `open_video(file)`: frames decoded as needed, memory pruned.
- transformers: every frame decoded into a list first (its session takes the whole video), then
  `init_video_session(video=frames)`, `add_inputs_to_inference_session`, `propagate_in_video_iterator`
  with the masks post-processed per frame, as its docs show.

Each run is its own process (peak RSS = the process's VmHWM, model included), in the order vfm
short, transformers short, vfm long, transformers long. Printed: frames/s, peak RSS, and the ratios
long/short (flat = 1.0) and transformers/vfm.
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

ROOT = Path(os.environ.get("VFM_BENCH_DIR", Path(tempfile.gettempdir()) / "vfm-bench"))


def peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def checkpoint(input_size: int, arch: str) -> Path:
    from vfm.testing.tiny_models import build_sam2_video

    d = ROOT / f"sam2.1-{arch}-random-{input_size}"
    if not (d / "model.safetensors").exists():
        build_sam2_video(d, seed=0, image_size=input_size, hiera_t=arch == "hiera-t")
    return d


def video(frames: int, width: int, height: int) -> Path:
    from vfm.testing.synthetic_video import write_video

    p = ROOT / f"synthetic-{width}x{height}-{frames}.mp4"
    if not p.exists():
        tmp = p.with_suffix(".tmp.mp4")
        write_video(tmp, frames, width, height, fps=30, codec="libx264")
        tmp.replace(p)
    return p


def child(variant: str, model_dir: str, video_path: str, frames: int) -> dict:
    import numpy as np
    import torch

    from vfm.testing.synthetic_video import frame_and_masks, object_centre
    from vfm.video.prompts import ObjectPrompt
    from vfm.video.reader import open_video
    from vfm.video.tracker import VideoTracker

    torch.manual_seed(0)
    tracker = VideoTracker.load(model_dir, device="cpu", precision="fp32")
    src = open_video(video_path, end=frames)
    x, y = object_centre(frame_and_masks(0, src.width, src.height)[1], 1)
    prompt = ObjectPrompt(0, 1, [(x, y)], [1])
    base = peak_rss_mb()
    n, covered = 0, 0.0
    start = time.perf_counter()
    if variant == "vfm":
        for frame in tracker.track(src, [prompt]):
            n += 1
            covered += float(frame.objects[0].mask.mean())
    else:
        model, proc = tracker.model, tracker.processor
        all_frames = [f.pixels for f in src]  # its session takes the whole video
        session = proc.init_video_session(video=all_frames, inference_device="cpu")
        proc.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_points=[[[[x, y]]]], input_labels=[[[1]]])
        with torch.inference_mode():
            for out in model.propagate_in_video_iterator(session, start_frame_idx=0):
                m = proc.post_process_masks([out.pred_masks], [[src.height, src.width]], binarize=True)[0]
                n += 1
                covered += float(m[0, 0].float().mean())
    seconds = time.perf_counter() - start
    return {"variant": variant, "frames": n, "seconds": seconds, "fps": n / seconds, "peak_rss_mb": peak_rss_mb(),
            "rss_after_load_mb": base, "mean_mask_cover": covered / max(n, 1), "threads": torch.get_num_threads(),
            "np": np.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs=2, default=[100, 1000], metavar=("SHORT", "LONG"))
    ap.add_argument("--input-size", type=int, default=1024, help="model input resolution (SAM 2.1: 1024)")
    ap.add_argument("--arch", choices=["hiera-t", "tiny"], default="hiera-t")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=576)
    ap.add_argument("--variants", nargs="+", default=["vfm", "transformers"])
    ap.add_argument("--child", nargs=4, metavar=("VARIANT", "MODEL", "VIDEO", "FRAMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.child[2], int(args.child[3]))))
        return
    ROOT.mkdir(parents=True, exist_ok=True)
    model = checkpoint(args.input_size, args.arch)
    clip = video(max(args.frames), args.width, args.height)
    rows = []
    for frames in args.frames:
        for variant in args.variants:
            r = subprocess.run([sys.executable, __file__, "--child", variant, str(model), str(clip), str(frames)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{variant} {frames} frames failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{variant:<13} {row['frames']:>5} frames  {row['fps']:6.2f} frames/s  peak RSS {row['peak_rss_mb']:8.0f} MB "
                  f"(after load {row['rss_after_load_mb']:.0f} MB)  mean mask cover {row['mean_mask_cover']:.3f}", flush=True)
    by = {(r["variant"], r["frames"]): r for r in rows}
    short, long = args.frames
    print(f"\nvideo {args.width}x{args.height}, model {args.arch} at {args.input_size} input, {rows[0]['threads'] if rows else '?'} threads")
    for variant in args.variants:
        if (variant, short) in by and (variant, long) in by:
            a, b = by[(variant, short)], by[(variant, long)]
            print(f"{variant:<13} peak RSS {long} / {short} frames: {b['peak_rss_mb'] / a['peak_rss_mb']:.3f}   "
                  f"frames/s {long} / {short}: {b['fps'] / a['fps']:.3f}")
    for frames in args.frames:
        if ("vfm", frames) in by and ("transformers", frames) in by:
            v, t = by[("vfm", frames)], by[("transformers", frames)]
            print(f"{frames:>5} frames: transformers / vfm peak RSS {t['peak_rss_mb'] / v['peak_rss_mb']:.2f}x, "
                  f"vfm / transformers frames/s {v['fps'] / t['fps']:.2f}x")


if __name__ == "__main__":
    main()
