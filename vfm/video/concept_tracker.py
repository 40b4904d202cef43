"""Track every instance of a concept through a video with SAM 3 (transformers' ``Sam3VideoModel``).

Each frame is preprocessed as transformers' video processor prepares a whole video, added to the
session and run once: the detector finds the concept's instances, the tracker propagates the known
ones, and SAM 3's own association, hot-start and reconditioning logic gives stable ids. Outputs come
as ``Sam3VideoModel.propagate_in_video_iterator`` gives them for a whole video: held back
``hotstart_delay`` frames (15) so that tracks the hot-start heuristics remove (unmatched or
duplicate new tracks) never appear, then post-processed by the processor's ``postprocess_outputs``.

Memory stays flat (``prune=True``): after each frame vfm drops what the model never reads again:
the frame's pixels, tracker memories older than ``num_maskmem`` frames and object pointers older
than ``max_object_pointers_in_encoder`` (SAM 3: 7 and 16), the memory features of conditioning
frames beyond the ``max_cond_frame_num`` (4) latest (their object pointers, which every later frame
reads, are kept), and per-frame score tables older than the frame. The session reports the total
frame count (the model caps object pointers at it), so frame by frame the results equal the
reference on the whole video (``tests/test_sam3_video.py``).

SAM 3's post-processing kernels (mask NMS, hole filling) come from :mod:`vfm.models.sam3_kernels`
when the hub's cannot load, so offline results equal online ones.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator

import numpy as np
import torch

from vfm.errors import ModelError, PromptError
from vfm.video.reader import VideoFrame
from vfm.video.tracker import TrackedFrame, TrackedObject, _dtype

#: object pointers are capped at min(frame count, max_object_pointers_in_encoder); with the count
#: unknown (a stream), it is taken to be at least this cap
UNKNOWN_LENGTH = 1 << 30


def _check_thresholds(threshold, new_threshold) -> None:
    for value, what in ((threshold, "threshold"), (new_threshold, "new-object threshold")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
            raise PromptError(f"{what} {value} must be between 0 and 1")


def _set_thresholds(model, threshold, new_threshold) -> None:
    """Detection score to keep tracks matched, and to start one (never below the first)."""
    if threshold is not None:
        model.score_threshold_detection = float(threshold)
        model.new_det_thresh = max(float(model.new_det_thresh), float(threshold))
    if new_threshold is not None:
        model.new_det_thresh = float(new_threshold)


class ConceptVideoTracker:
    """A loaded ``Sam3VideoModel`` and ``Sam3VideoProcessor``; :meth:`track` runs one video."""

    def __init__(self, model, processor, *, device: torch.device, dtype: torch.dtype, name: str):
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.name = name
        self.family = "sam3"
        self.categories: dict[int, str] = {}  # object id -> the text prompt that found it
        self.session = None  # the last run's inference session (for inspection)

    @classmethod
    def load(cls, name: str, *, device=None, precision: str = "auto", threshold: float | None = None,
             new_threshold: float | None = None) -> "ConceptVideoTracker":
        """``threshold``: detection score to match or start tracks (model default 0.5); ``new_threshold``:
        score a detection needs to start a new track (default 0.7, and never below ``threshold``)."""
        from transformers import Sam3VideoModel, Sam3VideoProcessor

        from vfm.models.registry import load_pretrained, resolve
        from vfm.models.sam3_kernels import install
        from vfm.runtime import resolve_device

        resolved = resolve(name, task="track")
        if resolved.family != "sam3":
            raise ModelError(f"text prompts in video need SAM 3 (--model sam3); '{name}' is a {resolved.family} model",
                             model_name=name)
        dev = resolve_device(device)
        dtype = _dtype(precision, dev)
        model = load_pretrained(Sam3VideoModel.from_pretrained, resolved)
        model = model.to(dev, dtype=dtype).eval()
        try:
            processor = Sam3VideoProcessor.from_pretrained(resolved.source, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelError(f"model {resolved.describe()} has no SAM 3 video processor files that load "
                             f"({str(exc).splitlines()[0][:160]})", model_name=name) from None
        _check_thresholds(threshold, new_threshold)
        _set_thresholds(model, threshold, new_threshold)
        install()
        return cls(model, processor, device=dev, dtype=dtype, name=resolved.name)

    @property
    def delay(self) -> int:
        return max(0, int(self.model.hotstart_delay))

    def preprocess(self, pixels: np.ndarray) -> torch.Tensor:
        """One frame as the model's input, exactly as the video processor prepares a whole video."""
        out = self.processor.video_processor(videos=[pixels[None]], return_tensors="pt")
        return out.pixel_values_videos[0][0]

    def new_session(self, texts: list[str], height: int, width: int, total_frames: int | None):
        from transformers.models.sam3_video.modeling_sam3_video import Sam3VideoInferenceSession

        class _Session(Sam3VideoInferenceSession):
            """Reports the video's frame count while old frames are pruned (see the module docstring)."""

            frame_count = UNKNOWN_LENGTH

            @property
            def num_frames(self):
                return self.frame_count

        session = self.processor.init_video_session(inference_device=self.device, processing_device="cpu",
                                                    video_storage_device=self.device, dtype=self.dtype)
        session.__class__ = _Session
        session.frame_count = int(total_frames) if total_frames else UNKNOWN_LENGTH
        session.video_height, session.video_width = height, width
        self.processor.add_text_prompt(session, texts)
        return session

    def track(self, frames: Iterable[VideoFrame], texts: list[str], *, total_frames: int | None = None,
              prune: bool = True, keep_pixels: bool = False, threshold: float | None = None,
              new_threshold: float | None = None) -> Iterator[TrackedFrame]:
        """Yield one :class:`TrackedFrame` per frame read: every instance of ``texts`` with its id,
        mask and score (SAM 3's detection score); :attr:`categories` maps ids to their text.
        ``threshold`` / ``new_threshold`` override the loaded ones for this run only."""
        texts = [t.strip() for t in texts if t and t.strip()]
        if not texts:
            raise PromptError('the text prompt is empty; give a noun phrase, e.g. --text "person"')
        _check_thresholds(threshold, new_threshold)
        self.categories.clear()
        return self._run(frames, texts, total_frames, prune, keep_pixels, threshold, new_threshold)

    @torch.inference_mode()
    def _run(self, frames, texts, total_frames, prune, keep_pixels, threshold, new_threshold) -> Iterator[TrackedFrame]:
        m = self.model
        saved = (m.score_threshold_detection, m.new_det_thresh)
        _set_thresholds(m, threshold, new_threshold)
        try:
            yield from self._frames(frames, texts, total_frames, prune, keep_pixels)
        finally:
            m.score_threshold_detection, m.new_det_thresh = saved

    def _frames(self, frames, texts, total_frames, prune, keep_pixels) -> Iterator[TrackedFrame]:
        session = None
        buffer: deque = deque()
        t = -1
        for frame in frames:
            t += 1
            height, width = frame.pixels.shape[:2]
            if session is None:
                session = self.session = self.new_session(texts, height, width, total_frames)
            elif (height, width) != (session.video_height, session.video_width):
                raise PromptError(f"frame {frame.index} is {width}x{height}, the video started at "
                                  f"{session.video_width}x{session.video_height}")
            session.add_new_frame(self.preprocess(frame.pixels), t)
            out = self.model(inference_session=session, frame_idx=t)
            if prune:
                self._prune(session, t)
            kept = (frame, out)
            if self.delay > 0:
                session.hotstart_removed_obj_ids.update(out.removed_obj_ids)
                buffer.append(kept)
                if len(buffer) >= self.delay:
                    yield self._frame(session, *buffer.popleft(), keep_pixels)
            else:
                yield self._frame(session, *kept, keep_pixels)
        while buffer:
            yield self._frame(session, *buffer.popleft(), keep_pixels)

    def _frame(self, session, frame: VideoFrame, out, keep_pixels: bool) -> TrackedFrame:
        height, width = frame.pixels.shape[:2]
        res = self.processor.postprocess_outputs(session, out, original_sizes=[[height, width]])
        prompts = session.prompts
        for obj_id in res["object_ids"].tolist():
            pid = session.obj_id_to_prompt_id.get(obj_id)
            if pid is not None and obj_id not in self.categories:
                self.categories[int(obj_id)] = prompts[pid]
        objects = [TrackedObject(int(i), m.cpu().numpy().astype(bool), round(float(s), 6))
                   for i, m, s in zip(res["object_ids"].tolist(), res["masks"], res["scores"].tolist())]
        return TrackedFrame(frame.index, frame.time, frame.name, sorted(objects, key=lambda o: o.id),
                            frame.pixels if keep_pixels else None)

    def _prune(self, session, t: int) -> None:
        """Drop what no later frame reads (see the module docstring)."""
        cfg = self.model.tracker_model.config
        window = max(int(cfg.num_maskmem), int(cfg.max_object_pointers_in_encoder))
        oldest = t - window + 1
        keep_cond = int(cfg.max_cond_frame_num)
        for obj_idx, outputs in session.output_dict_per_obj.items():
            non_cond = outputs["non_cond_frame_outputs"]
            for f in [f for f in non_cond if f < oldest]:
                del non_cond[f]
            cond = outputs["cond_frame_outputs"]
            if keep_cond >= 0:
                for f in sorted(cond)[:-keep_cond or None] if keep_cond else list(cond):
                    for key in ("maskmem_features", "maskmem_pos_enc"):  # attention reads the latest few only
                        cond[f].pop(key, None)
            tracked = session.frames_tracked_per_obj.get(obj_idx, {})
            for f in [f for f in tracked if f < t]:
                del tracked[f]
        for f in [f for f in session.processed_frames if f <= t]:
            del session.processed_frames[f]
        scores = session.obj_id_to_tracker_score_frame_wise
        for f in [f for f in scores if f < t]:
            del scores[f]


class TextPrompts:
    """A :class:`ConceptVideoTracker` bound to its texts, with the tracker interface ``track_video`` drives."""

    def __init__(self, tracker: ConceptVideoTracker, texts: list[str], total_frames: int | None = None,
                 threshold: float | None = None, new_threshold: float | None = None):
        self.tracker = tracker
        self.texts = texts
        self.total_frames = total_frames
        self.thresholds = {"threshold": threshold, "new_threshold": new_threshold}
        self.name = tracker.name
        self.categories = tracker.categories

    def track(self, frames, prompts, *, prune: bool = True, keep_pixels: bool = False, discover=None):
        if prompts or discover is not None:
            raise PromptError("text prompts track every instance on their own; give clicks, boxes or --classes in "
                              "another run")
        return self.tracker.track(frames, self.texts, total_frames=self.total_frames, prune=prune, keep_pixels=keep_pixels,
                                  **self.thresholds)
