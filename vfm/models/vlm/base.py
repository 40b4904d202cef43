"""The adapter contract every vision-language family follows.

An adapter turns a request (an image and a caption style, a question, a video's frames) into the
model's inputs exactly as the family's own processor builds them, and the generated tokens back
into text. Generation itself is shared (:mod:`vfm.models.vlm.generation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from vfm.errors import PromptError

#: The instruction a chat model gets for ``vfm caption`` (and with ``--detailed``).
CAPTION_PROMPT = "Describe this image in one sentence."
DETAILED_CAPTION_PROMPT = "Describe this image in detail."

from vfm.models.vlm.defaults import MAX_QUESTION_CHARS  # noqa: E402


@dataclass
class Request:
    """Inputs for ``model.generate`` and how to read its output."""

    inputs: dict[str, Any]
    prompt_length: int  # leading output tokens that are not new (the prompt, or a decoder's start token)
    finish: Callable[[torch.Tensor, torch.Tensor], str] | None = None  # (new ids, full sequence) -> text
    extra: dict[str, Any] = field(default_factory=dict)  # more generate() settings
    max_new_tokens_cap: int | None = None  # the most new tokens the model's positions allow


def check_question(question: str | None) -> str:
    if question is None or not isinstance(question, str) or not question.strip():
        raise PromptError('the question is empty; ask something, e.g. vfm ask photo.jpg "What is on the table?"')
    if len(question) > MAX_QUESTION_CHARS:
        raise PromptError(f"the question has {len(question)} characters; at most {MAX_QUESTION_CHARS} are accepted")
    return question.strip()


class VlmAdapter:
    """Base class: holds the model and processor, moves inputs, decodes."""

    family = ""
    captions = False  # vfm caption
    detailed = False  # vfm caption --detailed
    asks = False  # vfm ask IMAGE
    videos = False  # vfm ask VIDEO
    reads = False  # vfm read (OCR with regions)
    grounds = False  # phrase grounding of a text (vfm ask/caption --ground)

    def __init__(self, model, processor, device: torch.device, dtype: torch.dtype, name: str):
        self.model, self.processor, self.device, self.dtype, self.name = model, processor, device, dtype, name
        self.tokenizer = getattr(processor, "tokenizer", processor)

    # -- requests (the families override what they can do)
    def caption_request(self, image: np.ndarray, detailed: bool) -> Request:
        raise AssertionError("checked by VisionLanguage")

    def ask_request(self, image: np.ndarray, question: str) -> Request:
        raise AssertionError("checked by VisionLanguage")

    def video_request(self, frames: list[np.ndarray], fps: float, question: str) -> Request:
        raise AssertionError("checked by VisionLanguage")

    # -- shared helpers
    def to_device(self, batch) -> dict[str, Any]:
        out = {}
        for key, value in dict(batch).items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            out[key] = value
        return out

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def text(self, new_ids: torch.Tensor, sequence: torch.Tensor, request: Request) -> str:
        if request.finish is not None:
            return request.finish(new_ids, sequence)
        return self.decode(new_ids).strip()


def pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels))
