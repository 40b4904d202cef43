"""Per-image time of the dense and closed-set tasks on real-sized random-weight models.

    python bench/dense.py [--reps 3] [--size 1280x960] [--threads 2] [--only instance,eomt,lidar3d]

Each model is built at the size of its public checkpoint (the config only; weights random, as no
weights can be downloaded here), saved with the checkpoint's processor settings, and loaded through
the same vfm path a hub id takes:

  depth     Depth Anything V2 Small (DINOv2 ViT-S/14, 518 px short side)    DepthEstimator.estimate
  semantic  SegFormer-b0 ADE20K (512x512)                                   SemanticModel.semantic
  semantic  Mask2Former Swin-T ADE20K (384 short side)                      SemanticModel.semantic
  panoptic  Mask2Former Swin-T COCO panoptic (384 short side)               SemanticModel.panoptic
  instance  Mask2Former Swin-T COCO instance (384 short side)               SemanticModel.instances
  semantic  EoMT ViT-L ADE20K (512 crops, sliding window)                   SemanticModel.semantic
  lidar3d   SAM ViT-B on a 600x600 BEV picture of a synthetic scan          Lidar3D.detect (16x16 points)
  detect    RT-DETR v2 R50 COCO (640x640)                                   Detector.detect (closed set)
  classify  ViT-B/16 ImageNet-1k (224)                                      ImageClassifier.classify

Printed per task: median seconds per image over --reps calls after one warm-up (end to end: image
processor, model, post-processing at the original size), in fp32 and with bf16 autocast, and the
bf16 / fp32 ratio measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _common import bench_image, median, vit_b_checkpoint

IMAGENET = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])


def build(root: Path) -> dict[str, tuple[str, Path]]:
    import transformers as t

    torch.manual_seed(0)
    out = {}
    d = root / "da-v2-small"
    bb = t.Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, image_size=518, patch_size=14,
                        out_features=["stage3", "stage6", "stage9", "stage12"], reshape_hidden_states=False)
    t.DepthAnythingForDepthEstimation(t.DepthAnythingConfig(
        backbone_config=bb, reassemble_hidden_size=384, neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64,
        head_hidden_size=32)).save_pretrained(d)
    t.DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3,
                        **IMAGENET).save_pretrained(d)
    out["depth Depth-Anything-V2-S"] = ("depth", d)
    d = root / "segformer-b0"
    labels = {i: f"class{i}" for i in range(150)}
    t.SegformerForSemanticSegmentation(t.SegformerConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
                                       ).save_pretrained(d)
    t.SegformerImageProcessor(size={"height": 512, "width": 512}, do_reduce_labels=True).save_pretrained(d)
    out["semantic SegFormer-b0 ADE"] = ("semantic", d)
    for name, n in (("m2f-swin-t-ade", 150), ("m2f-swin-t-coco-panoptic", 133)):
        d = root / name
        labels = {i: f"class{i}" for i in range(n)}
        t.Mask2FormerForUniversalSegmentation(t.Mask2FormerConfig(
            use_timm_backbone=False, id2label=labels, label2id={v: k for k, v in labels.items()})).save_pretrained(d)
        t.Mask2FormerImageProcessor(size={"shortest_edge": 384, "longest_edge": 1536}, ignore_index=255).save_pretrained(d)
    d = root / "m2f-swin-t-coco-instance"
    labels = {i: f"class{i}" for i in range(80)}
    t.Mask2FormerForUniversalSegmentation(t.Mask2FormerConfig(
        use_timm_backbone=False, id2label=labels, label2id={v: k for k, v in labels.items()})).save_pretrained(d)
    t.Mask2FormerImageProcessor(size={"shortest_edge": 384, "longest_edge": 1536}, ignore_index=255).save_pretrained(d)
    out["instance Mask2Former Swin-T COCO"] = ("instance", d)
    d = root / "eomt-large-ade"
    labels = {i: f"class{i}" for i in range(150)}
    t.EomtForUniversalSegmentation(t.EomtConfig(image_size=512, num_queries=100, id2label=labels,
                                                label2id={v: k for k, v in labels.items()})).save_pretrained(d)
    t.EomtImageProcessor(size={"shortest_edge": 512}, do_split_image=True, do_pad=False).save_pretrained(d)
    out["semantic EoMT ViT-L ADE (window)"] = ("semantic", d)
    out["lidar3d SAM ViT-B, BEV 600x600"] = ("lidar3d", vit_b_checkpoint(str(root)))
    out["semantic Mask2Former Swin-T ADE"] = ("semantic", root / "m2f-swin-t-ade")
    out["panoptic Mask2Former Swin-T COCO"] = ("panoptic", root / "m2f-swin-t-coco-panoptic")
    d = root / "rtdetr-v2-r50"
    labels = {i: f"class{i}" for i in range(80)}
    t.RTDetrV2ForObjectDetection(t.RTDetrV2Config(id2label=labels, label2id={v: k for k, v in labels.items()})
                                 ).save_pretrained(d)
    t.RTDetrImageProcessor(size={"height": 640, "width": 640}).save_pretrained(d)
    out["detect RT-DETR-v2 R50"] = ("detect", d)
    d = root / "vit-b16"
    labels = {i: f"class{i}" for i in range(1000)}
    t.ViTForImageClassification(t.ViTConfig(id2label=labels, label2id={v: k for k, v in labels.items()})).save_pretrained(d)
    t.ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(d)
    out["classify ViT-B/16"] = ("classify", d)
    return out


def runner(task: str, path: Path, precision: str):
    if task == "depth":
        from vfm.tasks.depth import DepthEstimator

        m = DepthEstimator.load(str(path), device="cpu", precision=precision)
        return m.estimate
    if task in ("semantic", "panoptic", "instance"):
        from vfm.tasks.semantic import SemanticModel

        m = SemanticModel.load(str(path), device="cpu", precision=precision)
        return {"semantic": m.semantic, "panoptic": m.panoptic, "instance": m.instances}[task]
    if task == "lidar3d":
        from vfm.lidar.detect3d import Lidar3D
        from vfm.testing.synthetic_scan import synthetic_scan

        det = Lidar3D.load(str(path), device="cpu", precision=precision, points_per_side=16)
        cloud, _ = synthetic_scan(seed=0)
        return lambda _image: det.detect(cloud)
    if task == "detect":
        from vfm.tasks.closed_detect import ClosedSetDetector

        m = ClosedSetDetector.load(str(path), device="cpu", precision=precision)
        return m.detect
    from vfm.tasks.closed_classify import ImageClassifier

    m = ImageClassifier.load(str(path), device="cpu", precision=precision)
    return m.classify


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--size", default="1280x960", help="WxH of the test image")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", default=None, help="comma-separated words; run the rows whose label has one (e.g. eomt,lidar3d)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    side = max(w, h)
    image = bench_image(side)[:h, :w]
    from vfm.io.image import load_image

    loaded = load_image(image)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, image {w}x{h}, median of {args.reps} after 1 warm-up")
    print(f"{'task / model':<36} {'fp32 s':>8} {'bf16 s':>8} {'bf16/fp32':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (task, path) in build(Path(tmp)).items():
            if args.only and not any(w.lower() in label.lower() for w in args.only.split(",")):
                continue
            fns = {p: runner(task, path, p) for p in ("fp32", "bf16")}
            times = {p: [] for p in fns}
            for fn in fns.values():
                fn(loaded)  # warm-up
            for _ in range(args.reps):  # interleaved, so both see the same machine state
                for p, fn in fns.items():
                    t0 = time.perf_counter()
                    fn(loaded)
                    times[p].append(time.perf_counter() - t0)
            f, b = median(times["fp32"]), median(times["bf16"])
            print(f"{label:<36} {f:8.3f} {b:8.3f} {b / f:10.2f}", flush=True)


if __name__ == "__main__":
    main()
