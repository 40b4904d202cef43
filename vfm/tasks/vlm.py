"""Captions, questions, OCR: vision-language models (Florence-2, BLIP, SmolVLM, LLaVA, Qwen2.5-VL).

    vlm = VisionLanguage.load("smolvlm-256m")
    vlm.caption("photo.jpg").text                      # one sentence; detailed=True for a paragraph
    vlm.ask("photo.jpg", "How many cups?").text        # greedy: the same answer every time
    vlm.ask_video("clip.mp4", "What happens?", frames=8)
    VisionLanguage.load("florence-2-base").read("receipt.png")   # Instances: text lines, boxes, names

Generation is greedy (one beam, no sampling: deterministic) unless a temperature > 0 is given, and
the text is exactly what the model's ``generate`` + the processor's decoding return for the same
inputs. ``on_text`` receives the answer as it is generated (for streaming to a terminal).
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from vfm.errors import ModelError, PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.models.vlm.base import VlmAdapter, check_question
from vfm.models.vlm.generation import check_generation, generate
from vfm.results.answer import Answer
from vfm.results.instances import Instances

from vfm.models.vlm.defaults import (DEFAULT_ASK_MODEL, DEFAULT_CAPTION_MODEL, DEFAULT_FRAMES,  # noqa: F401
                                     DEFAULT_MAX_NEW_TOKENS, DEFAULT_READ_MODEL, READ_MAX_NEW_TOKENS)


def _loaded(image: ImageSource | LoadedImage, max_pixels: int | None = None) -> LoadedImage:
    return image if isinstance(image, LoadedImage) else load_image(image, max_pixels=max_pixels)


class VisionLanguage:
    """A loaded vision-language model; one generation at a time (calls are serialised by a lock)."""

    def __init__(self, adapter: VlmAdapter):
        self.adapter = adapter
        self.name = adapter.name
        self.lock = threading.Lock()

    @classmethod
    def load(cls, name: str, *, task: str | None = None, device=None, precision: str = "fp32") -> "VisionLanguage":
        from vfm.models.vlm.loading import load_vlm

        return cls(load_vlm(name, task=task, device=device, precision=precision))

    @property
    def family(self) -> str:
        return self.adapter.family

    # ------------------------------------------------------------------------------- checks
    def _needs(self, capability: str, what: str, instead: str) -> None:
        if not getattr(self.adapter, capability):
            raise ModelError(f"model '{self.name}' ({self.family}) cannot {what}; {instead}", model_name=self.name)

    # ------------------------------------------------------------------------------- jobs
    def caption(self, image: ImageSource | LoadedImage, *, detailed: bool = False,
                max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, temperature: float | None = None,
                on_text: Callable[[str], None] | None = None, max_pixels: int | None = None) -> Answer:
        self._needs("captions", "caption images", "use florence-2-base, blip-base or a chat VLM (vfm models --task caption)")
        if detailed:
            self._needs("detailed", "write detailed captions (it gives one short caption)",
                        "drop --detailed, or use florence-2-base or a chat VLM")
        check_generation(max_new_tokens, temperature)
        loaded = _loaded(image, max_pixels)
        return self._run(lambda: self.adapter.caption_request(loaded.pixels, detailed), "caption", None,
                         max_new_tokens, temperature, on_text)

    def ask(self, image: ImageSource | LoadedImage, question: str, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
            temperature: float | None = None, on_text: Callable[[str], None] | None = None,
            max_pixels: int | None = None) -> Answer:
        self._needs("asks", "answer questions (it is a captioning model)",
                    "use vfm caption with it, or ask a chat VLM such as smolvlm-256m (vfm models --task ask)")
        question = check_question(question)
        check_generation(max_new_tokens, temperature)
        loaded = _loaded(image, max_pixels)
        return self._run(lambda: self.adapter.ask_request(loaded.pixels, question), "ask", question,
                         max_new_tokens, temperature, on_text)

    def ask_video(self, video: str, question: str, *, frames: int = DEFAULT_FRAMES,
                  max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, temperature: float | None = None,
                  on_text: Callable[[str], None] | None = None, max_pixels: int | None = None) -> Answer:
        self._needs("videos", "take a video", "ask a video-capable chat VLM: smolvlm (SmolVLM2), llava-onevision, qwen2.5-vl")
        question = check_question(question)
        check_generation(max_new_tokens, temperature)
        from vfm.video.sample import sample_frames

        clip = sample_frames(video, frames, max_pixels=max_pixels)
        answer = self._run(lambda: self.adapter.video_request(clip.frames, clip.fps, question), "ask", question,
                           max_new_tokens, temperature, on_text)
        answer.frames = clip.indices
        return answer

    def read(self, image: ImageSource | LoadedImage, *, max_new_tokens: int = READ_MAX_NEW_TOKENS,
             max_pixels: int | None = None) -> Instances:
        """OCR with regions: one instance per text line, ``class_names`` the text, ``xyxy`` the box
        around its quadrilateral (kept in ``data["quad"]`` as x1,y1,...,x4,y4)."""
        self._needs("reads", "read text with regions", "use florence-2-base or florence-2-large")
        check_generation(max_new_tokens, None)
        loaded = _loaded(image, max_pixels)
        result = self._finish(self.adapter.read_request(loaded.pixels), max_new_tokens, None, None)[0]
        return ocr_instances(result, loaded.height, loaded.width)

    def ground_text(self, image: ImageSource | LoadedImage, text: str, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                    max_pixels: int | None = None) -> Instances:
        """The phrases of ``text`` located in the image (Florence-2 caption-to-phrase grounding): boxes
        named by their phrase."""
        self._needs("grounds", "ground phrases", "use florence-2-base or florence-2-large as --grounder")
        if not text or not text.strip():
            return Instances.empty(_loaded(image, max_pixels).pixels.shape[:2], with_masks=False, labeled=True)
        loaded = _loaded(image, max_pixels)
        result = self._finish(self.adapter.ground_request(loaded.pixels, text.strip()), max_new_tokens, None, None)[0]
        return grounding_instances(result, loaded.height, loaded.width)

    # ------------------------------------------------------------------------------- plumbing
    def _run(self, build, task: str, question: str | None, max_new_tokens: int, temperature, on_text) -> Answer:
        text, tokens, seconds, first = self._finish(None, max_new_tokens, temperature, on_text, build=build)
        return Answer(text=text, model=self.name, tokens=tokens, seconds=seconds, first_token_seconds=first,
                      task=task, question=question)

    def _finish(self, request, max_new_tokens, temperature, on_text, build=None):
        with self.lock:
            if request is None:
                try:
                    request = build()
                except (ValueError, TypeError, IndexError) as exc:  # the processor refused the input
                    raise PromptError(f"model '{self.name}' cannot take this input: {str(exc).splitlines()[0][:200]}") from exc
            out = generate(self.adapter.model, request.inputs, prompt_length=request.prompt_length,
                           decode=self.adapter.decode, max_new_tokens=min(max_new_tokens, request.max_new_tokens_cap or max_new_tokens),
                           temperature=temperature,
                           on_text=on_text, extra=request.extra)
        text = self.adapter.text(out.ids, out.sequence, request)
        return text, int(out.ids.numel()), out.seconds, out.first_token_seconds


def ocr_instances(result: dict, height: int, width: int) -> Instances:
    """Florence-2 ``{"quad_boxes", "labels"}`` -> Instances (boxes around the quads, clipped to the image)."""
    quads = np.asarray(result.get("quad_boxes") or [], dtype=np.float32).reshape(-1, 8)
    names = [str(t) for t in result.get("labels") or []]
    xyxy = _clip(np.stack([quads[:, 0::2].min(1), quads[:, 1::2].min(1), quads[:, 0::2].max(1), quads[:, 1::2].max(1)], 1)
                 if len(quads) else np.zeros((0, 4), np.float32), height, width)
    # Florence-2 gives no confidence: every line scores 1
    return Instances(image_size=(height, width), xyxy=xyxy, scores=np.ones(len(xyxy), np.float32),
                     class_ids=_ids(names), class_names=names, data={"quad": [q.round(2).tolist() for q in quads]})


def grounding_instances(result: dict, height: int, width: int) -> Instances:
    """Florence-2 ``{"bboxes", "labels"}`` -> Instances."""
    boxes = np.asarray(result.get("bboxes") or [], dtype=np.float32).reshape(-1, 4)
    names = [str(t) for t in result.get("labels") or []]
    return Instances(image_size=(height, width), xyxy=_clip(boxes, height, width), scores=np.ones(len(boxes), np.float32),
                     class_ids=_ids(names), class_names=names)


def _clip(xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.asarray(xyxy, np.float32).reshape(-1, 4).copy()
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out


def _ids(names: list[str]) -> np.ndarray:
    order = {n: i for i, n in enumerate(dict.fromkeys(names))}
    return np.asarray([order[n] for n in names], np.int64)
