"""Per-frame time of SAM 3 video (`vfm track --text`) against SAM 2.1 Hiera-T click tracking, one run.

    python bench/sam3_video.py [--frames 3] [--size 1280x720] [--objects 3] [--threads 2]

Both at the public checkpoints' sizes with random weights (none can be downloaded here), built in
memory (the per-frame cost does not depend on how weights were loaded): SAM 3 from
``Sam3VideoConfig()``'s defaults (the 848M facebook/sam3 layout: detector + tracker, 1008x1008 input)
and SAM 2.1 Hiera-T (``vfm.testing.tiny_models.sam2_video_config(hiera_t=True)``, 1024x1024). The
same synthetic video goes through vfm's streaming trackers (``ConceptVideoTracker`` /
``VideoTracker``, memory pruning on). Random weights score every query alike, so a hook on SAM 3's
detector keeps its --objects best queries per frame (the others' logits set to -inf), thresholds are
0, mask NMS is off (random masks all overlap) and ``max_num_objects`` caps the tracks at --objects; SAM 2.1 tracks --objects boxes given on the
first frame. Printed: median seconds per frame after --warmup frames, and the
ratio. SAM 3 runs its detector on every frame and its tracker for every object.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from _common import median


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=3, help="frames timed, after --warmup")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = map(int, args.size.split("x"))
    n = args.warmup + args.frames

    from transformers import (Sam2ImageProcessor, Sam2VideoModel, Sam2VideoProcessor, Sam2VideoVideoProcessor,
                              Sam3ImageProcessor, Sam3VideoConfig, Sam3VideoModel, Sam3VideoProcessor)

    from vfm.models.sam3_kernels import install
    from vfm.testing.synthetic_video import frame_and_masks, object_box
    from vfm.testing.tiny_clip import clip_tokenizer
    from vfm.testing.tiny_models import sam2_video_config
    from vfm.video.concept_tracker import ConceptVideoTracker
    from vfm.video.prompts import ObjectPrompt
    from vfm.video.reader import VideoFrame
    from vfm.video.tracker import VideoTracker

    video = [frame_and_masks(i, w, h, objects=args.objects, seed=0) for i in range(n)]
    frames = [VideoFrame(i, i / 30, img, f"{i:05d}.jpg") for i, (img, _) in enumerate(video)]

    torch.manual_seed(0)
    tok = clip_tokenizer(max_length=32)
    cfg = Sam3VideoConfig()
    cfg.detector_config.text_config.eos_token_id = tok.eos_token_id
    cfg.detector_config.text_config.bos_token_id = tok.bos_token_id
    cfg.detector_config.text_config.pad_token_id = tok.pad_token_id
    sam3 = Sam3VideoModel(cfg).eval()
    sam3.score_threshold_detection = sam3.new_det_thresh = 0.0
    sam3.max_num_objects = args.objects
    sam3.det_nms_thresh = 0.0  # random masks all overlap: mask NMS would leave one track

    def keep_best(module, inputs, output):
        logits = output.pred_logits  # 1 x Q
        drop = torch.ones_like(logits, dtype=torch.bool)
        drop[0, logits[0].topk(args.objects).indices] = False
        output.pred_logits = logits.masked_fill(drop, float("-inf"))
        return output

    sam3.detector_model.register_forward_hook(keep_best)
    params = sum(p.numel() for p in sam3.parameters()) / 1e6
    proc3 = Sam3VideoProcessor(image_processor=Sam3ImageProcessor(), tokenizer=tok,
                               video_processor=Sam2VideoVideoProcessor(size={"height": 1008, "width": 1008},
                                                                       image_mean=[0.5] * 3, image_std=[0.5] * 3))
    install()
    concept = ConceptVideoTracker(sam3, proc3, device=torch.device("cpu"), dtype=torch.float32, name="sam3 (random)")

    sam2 = Sam2VideoModel(sam2_video_config(image_size=1024, hiera_t=True)).eval()
    proc2 = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(), video_processor=Sam2VideoVideoProcessor())
    clicks = VideoTracker(sam2, proc2, device=torch.device("cpu"), dtype=torch.float32, name="sam2.1-hiera-tiny (random)",
                          family="sam2")
    prompts = [ObjectPrompt(0, k + 1, box=object_box(video[0][1], k + 1)) for k in range(args.objects)]

    def per_frame(gen):
        stamps = [time.perf_counter()]
        counts = []
        for f in gen:
            stamps.append(time.perf_counter())
            counts.append(len(f.objects))
        return [b - a for a, b in zip(stamps, stamps[1:])], counts

    # SAM 3 holds outputs back for its hot-start delay; with it at 0 each frame comes out as it is done
    sam3.hotstart_delay = 0
    t3, c3 = per_frame(concept.track(frames, ["person"], total_frames=n))
    t2, c2 = per_frame(clicks.track(frames, prompts))
    t3, t2 = t3[args.warmup:], t2[args.warmup:]
    print(f"video {w}x{h}, {args.frames} frames timed after {args.warmup}, {args.threads} threads, fp32")
    print(f"  sam3 --text ({params:.0f}M params, {max(c3)} tracks)   {median(t3):7.2f} s/frame  "
          f"(frames: {', '.join(f'{v:.2f}' for v in t3)})")
    print(f"  sam2.1-hiera-tiny, {args.objects} boxes    {median(t2):7.2f} s/frame  (frames: {', '.join(f'{v:.2f}' for v in t2)})")
    print(f"  sam3 / sam2.1-hiera-tiny = {median(t3) / median(t2):.2f}")


if __name__ == "__main__":
    main()
