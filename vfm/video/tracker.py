"""Track objects through a video with SAM 2.1 / EdgeTAM / SAM 3's tracker (transformers' ``Sam2VideoModel`` family).

The tracker streams: each frame is preprocessed, run through transformers' own video model in an
inference session, post-processed to the frame's size and handed back before the next frame is
decoded. With ``prune=True`` (the default) the session keeps only what the model can still read:

- the conditioning frames (frames with prompts) — all of them, they are few;
- the last ``W = max(num_maskmem, max_object_pointers_in_encoder)`` tracked frames' memories and
  object pointers (SAM 2.1: 16 frames);
- one preprocessed frame and its image features.

Everything older, and each frame's full-resolution mask logits once its memory is encoded, is
dropped, so memory does not grow with the video's length. Because the model never reads what is
dropped, the masks are the same as with pruning off (tested).

Prompts on a frame are fed in the order transformers' interactive API would take them: the frame is
first tracked for the objects already known, then the new prompts are added and the frame is run
again, so a click on frame 300 refines an object from there on (as SAM 2's interactive mode does
after a first propagation), and an object first prompted on frame 300 starts there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from vfm.errors import ModelError, PromptError
from vfm.video.prompts import ObjectPrompt
from vfm.video.reader import VideoFrame

#: vfm family -> transformers video model class name.
VIDEO_MODEL_CLASSES = {"sam2": "Sam2VideoModel", "edgetam": "EdgeTamVideoModel", "sam3": "Sam3TrackerVideoModel"}
#: vfm family -> transformers video processor class name (SAM 3's tracker has its own)
VIDEO_PROCESSOR_CLASSES = {"sam3": "Sam3TrackerVideoProcessor"}


@dataclass
class TrackedObject:
    id: int
    mask: np.ndarray  # HxW bool
    score: float  # object presence probability, sigmoid of the model's object score logit


@dataclass
class TrackedFrame:
    index: int  # source frame number
    time: float
    name: str
    objects: list[TrackedObject]  # every object known so far, in id order (masks may be empty)
    pixels: np.ndarray | None = None  # the frame, for overlays


class VideoTracker:
    """A loaded video model and processor; :meth:`track` runs one video."""

    def __init__(self, model, processor, *, device: torch.device, dtype: torch.dtype, name: str, family: str):
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.name = name
        self.family = family

    @classmethod
    def load(cls, name: str, *, device=None, precision: str = "auto") -> "VideoTracker":
        import transformers

        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device

        resolved = resolve(name, task="track")
        dev = resolve_device(device)
        dtype = _dtype(precision, dev)
        if resolved.meta_kind is not None:  # a Meta-format SAM 2.1 file (registry lets only those through)
            model, processor = _meta_video(resolved)
            model = model.to(dev, dtype=dtype).eval()
            return cls(model, processor, device=dev, dtype=dtype, name=resolved.name, family=resolved.family)
        model_cls = getattr(transformers, VIDEO_MODEL_CLASSES[resolved.family])
        try:
            model = load_pretrained(model_cls.from_pretrained, resolved)
        except ModelError as exc:
            if "missing" in str(exc):
                raise ModelError(f"{exc}: it looks like an image-only checkpoint without the video memory "
                                 "(memory encoder, memory attention); give a video checkpoint such as sam2.1-hiera-tiny",
                                 model_name=name) from exc
            raise
        model = model.to(dev, dtype=dtype).eval()
        processor = _load_processor(resolved)
        return cls(model, processor, device=dev, dtype=dtype, name=resolved.name, family=resolved.family)

    @property
    def window(self) -> int:
        """How many past tracked frames the model reads (memories and object pointers)."""
        cfg = self.model.config
        return max(int(cfg.num_maskmem), int(cfg.max_object_pointers_in_encoder))

    def preprocess(self, pixels: np.ndarray) -> torch.Tensor:
        """One frame as the model's input, exactly as the processor prepares a whole video."""
        out = self.processor.video_processor(videos=[pixels[None]], return_tensors="pt")
        return out.pixel_values_videos[0][0]

    @torch.inference_mode()
    def track(self, frames: Iterable[VideoFrame], prompts: list[ObjectPrompt], *, prune: bool = True,
              keep_pixels: bool = False, discover: Callable[[VideoFrame, list[TrackedObject]], list[ObjectPrompt]] | None = None,
              ) -> Iterator[TrackedFrame]:
        """Yield one :class:`TrackedFrame` per frame read, prompts applied on their frames.

        ``discover(frame, objects)`` is called on every frame with the objects tracked on it so far
        and returns more prompts for that frame (grounded tracking adds detections as new objects).
        """
        by_frame: dict[int, list[ObjectPrompt]] = {}
        for p in prompts:
            by_frame.setdefault(p.frame, []).append(p)
        session = self.processor.init_video_session(inference_device=self.device, dtype=self.dtype)
        t = -1
        for frame in frames:
            t += 1
            height, width = frame.pixels.shape[:2]
            pix = self.preprocess(frame.pixels).to(self.device, self.dtype)
            output = None
            if session.get_obj_num() > 0:
                output = self.model(inference_session=session, frame_idx=t, frame=pix)
            here = list(by_frame.get(frame.index, ()))
            objects = None
            if discover is not None:
                objects = self._objects(output, height, width)
                taken = {p.object for p in here}
                here += [p for p in discover(frame, objects) if p.object not in taken]
            if here:
                for p in here:
                    self._add(session, t, p, (height, width))
                session.obj_with_new_inputs = [p.object for p in here]
                output = self.model(inference_session=session, frame_idx=t, frame=pix)
                objects = None  # the frame was run again
            if objects is None:
                objects = self._objects(output, height, width)
            if prune:
                self._prune(session, t)
            yield TrackedFrame(frame.index, frame.time, frame.name, objects, frame.pixels if keep_pixels else None)

    def _add(self, session, t: int, p: ObjectPrompt, size: tuple[int, int]) -> None:
        if p.mask is not None:
            self.processor.add_inputs_to_inference_session(session, frame_idx=t, obj_ids=p.object,
                                                           input_masks=torch.from_numpy(p.mask))
            return
        kw = {}
        if p.points:
            kw["input_points"] = [[[list(q) for q in p.points]]]
            kw["input_labels"] = [[list(p.labels)]]
        if p.box is not None:
            kw["input_boxes"] = [[list(p.box)]]
        if not kw:
            raise PromptError(f"{p.describe()} has no points, box or mask")
        self.processor.add_inputs_to_inference_session(session, frame_idx=t, obj_ids=p.object, original_size=size, **kw)

    def _objects(self, output, height: int, width: int) -> list[TrackedObject]:
        if output is None:
            return []
        masks = self.processor.post_process_masks([output.pred_masks.float()], [[height, width]], binarize=True)[0]
        logits = output.object_score_logits.float().reshape(-1).tolist()
        objs = []
        for i, obj_id in enumerate(output.object_ids):
            score = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logits[i]))))
            objs.append(TrackedObject(int(obj_id), masks[i, 0].cpu().numpy(), round(score, 6)))
        return sorted(objs, key=lambda o: o.id)

    def _prune(self, session, t: int) -> None:
        """Drop what the model no longer reads once frame ``t`` is done (see the module docstring)."""
        oldest = t - self.window + 1  # frames >= oldest may still be read by frame t + 1
        for obj_idx, outputs in session.output_dict_per_obj.items():
            non_cond = outputs["non_cond_frame_outputs"]
            for f in [f for f in non_cond if f < oldest]:
                del non_cond[f]
            for store in (non_cond, outputs["cond_frame_outputs"]):
                for out in store.values():
                    out.pop("high_res_masks", None)
            tracked = session.frames_tracked_per_obj[obj_idx]
            for f in [f for f in tracked if f < t]:
                del tracked[f]
        frames = session.processed_frames or {}
        for f in [f for f in frames if f < t + 1]:
            del frames[f]


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise PromptError(f"unknown precision '{precision}'; use auto, fp32, bf16 or fp16")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    if precision == "fp16" and device.type == "cpu":
        raise PromptError("--precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _meta_video(resolved):
    """Sam2VideoModel + the released SAM 2.1 processor settings (1024 square, ImageNet statistics) for a Meta file."""
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    from vfm.models.meta.checkpoint import KINDS, read_state_dict
    from vfm.models.meta.sam2 import IMAGE_SIZE, sam2_video_from_meta

    state = read_state_dict(resolved.source, resolved.name)
    try:
        model = sam2_video_from_meta(state)
    except (KeyError, ValueError, RuntimeError, IndexError) as exc:
        raise ModelError(f"'{resolved.name}' looks like {KINDS['sam2'][1]} but does not load for tracking: "
                         f"{str(exc).splitlines()[0][:200]}", model_name=resolved.name) from None
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=size), video_processor=Sam2VideoVideoProcessor(size=size))
    return model, processor


def _load_processor(resolved):
    import transformers

    from vfm.models.registry import hub_online

    processor_cls = getattr(transformers, VIDEO_PROCESSOR_CLASSES.get(resolved.family, "Sam2VideoProcessor"))
    last = None
    for local_only in ((True,) if resolved.is_local else (True, False)):
        if not local_only and not hub_online():
            break
        try:
            return processor_cls.from_pretrained(resolved.source, local_files_only=local_only)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            last = exc
    raise ModelError(f"model {resolved.describe()} has no video processor files (processor_config.json, "
                     f"video_preprocessor_config.json) that load: {str(last).splitlines()[0] if last else 'hub unreachable'}",
                     model_name=resolved.name)
