"""Monocular depth: an image -> a depth value for every pixel (Depth Anything V2, DPT, ZoeDepth, Depth Pro).

    est = DepthEstimator.load("depth-anything-v2-small")     # alias, hub id or local directory
    depth = est.estimate("photo.jpg")                         # DepthMap at the photo's resolution
    depth.kind, depth.values.shape                            # "relative", (H, W)

The numbers are those of transformers' ``depth-estimation`` pipeline: the checkpoint's own image
processor, the model's forward, and the processor's ``post_process_depth_estimation`` with the
original size (for ZoeDepth that is its ``source_sizes``: padding removed, resized back). Relative
or metric (see :mod:`vfm.results.depth`) comes from the checkpoint: Depth Anything's config says
``depth_estimation_type``; DPT is relative; ZoeDepth and Depth Pro are metric.
"""

from __future__ import annotations

import numpy as np
import torch

from vfm.errors import ModelError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.results.depth import DepthMap
from vfm.runtime import autocast

DEFAULT_DEPTH_MODEL = "depth-anything-v2-small"


def depth_kind(config) -> str:
    """"metric" or "relative" for a transformers depth config."""
    model_type = getattr(config, "model_type", "")
    if model_type in ("zoedepth", "depth_pro"):
        return "metric"
    if model_type == "depth_anything":
        return "metric" if getattr(config, "depth_estimation_type", "relative") == "metric" else "relative"
    return "relative"  # DPT / MiDaS: inverse depth


class DepthEstimator:
    """A depth checkpoint with its image processor."""

    def __init__(self, model, processor, device: torch.device, dtype: torch.dtype = torch.float32, name: str = ""):
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.name = name
        self.kind = depth_kind(model.config)

    @classmethod
    def load(cls, name: str = DEFAULT_DEPTH_MODEL, device: str | None = None, precision: str = "fp32") -> "DepthEstimator":
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        from vfm.models.processors import load_processor
        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device, resolve_precision

        resolved = resolve(name, task="depth")
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        try:
            model = load_pretrained(AutoModelForDepthEstimation.from_pretrained, resolved)
        except ValueError as exc:  # a config transformers has no depth head for (e.g. a DPT segmentation checkpoint)
            raise ModelError(f"model {resolved.describe()} is not a depth-estimation checkpoint ({exc})".split("\n")[0],
                             model_name=name) from exc
        processor = load_processor(AutoImageProcessor, resolved)
        return cls(model, processor, dev, dtype, name=name)

    @torch.inference_mode()
    def estimate(self, image: ImageSource | LoadedImage) -> DepthMap:
        """The depth of every pixel of ``image`` (a path, bytes, PIL image, array or LoadedImage)."""
        from PIL import Image

        loaded = image if isinstance(image, LoadedImage) else load_image(image)
        h, w = loaded.height, loaded.width
        inputs = self.processor(images=Image.fromarray(loaded.pixels), return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with autocast(self.device, self.dtype):
            outputs = self.model(**inputs)
        outputs.predicted_depth = outputs.predicted_depth.float()
        # The pipeline's call: the original size is target_sizes for most models and source_sizes for ZoeDepth.
        post = self.processor.post_process_depth_estimation(outputs, [(h, w)])[0]
        values = post["predicted_depth"].float().cpu().numpy()
        extras = {}
        for key in ("focal_length", "field_of_view"):
            if post.get(key) is not None:
                extras[key] = float(np.asarray(post[key].float().cpu()).reshape(-1)[0])
        return DepthMap(values, self.kind, model=self.name, extras=extras)
