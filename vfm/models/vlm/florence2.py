"""Florence-2: captions, detailed captions, OCR with regions, phrase grounding — one model, task tokens.

Each job is a task token (``<CAPTION>``, ``<DETAILED_CAPTION>``, ``<OCR_WITH_REGION>``,
``<CAPTION_TO_PHRASE_GROUNDING>`` + text); the processor expands it into its instruction, and the
generated text (special tokens kept: ``<loc_N>`` are coordinates) goes through the processor's own
``post_process_generation`` with the image size, which turns location bins into pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfm.errors import PromptError
from vfm.models.vlm.base import Request, VlmAdapter, pil

CAPTION, DETAILED, OCR_REGIONS, GROUNDING = "<CAPTION>", "<DETAILED_CAPTION>", "<OCR_WITH_REGION>", "<CAPTION_TO_PHRASE_GROUNDING>"


class Florence2Adapter(VlmAdapter):
    family = "florence2"
    captions = detailed = reads = grounds = True

    def task_request(self, image: np.ndarray, task: str, text: str = "") -> Request:
        # BART's learned positions bound both the encoder's input (image tokens + instruction) and the answer
        limit = int(self.model.config.get_text_config().max_position_embeddings)
        batch = self.processor(text=task + text, images=pil(image), return_tensors="pt")
        excess = int(batch["input_ids"].shape[1]) - limit
        if excess > 0:
            if task != GROUNDING:
                raise PromptError(f"the input is {excess} tokens over Florence-2's limit of {limit}")
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if excess >= len(ids):
                raise PromptError(f"the image alone fills Florence-2's {limit} positions; no room for the text")
            text = self.tokenizer.decode(ids[:len(ids) - excess])  # ground the answer's first phrases that fit
            batch = self.processor(text=task + text, images=pil(image), return_tensors="pt")
        size = (int(image.shape[1]), int(image.shape[0]))  # (width, height), as post_process_generation takes it

        def finish(new_ids, sequence) -> Any:
            raw = self.tokenizer.decode(sequence, skip_special_tokens=False)
            return self.processor.post_process_generation(raw, task=task, image_size=size)[task]

        # the output starts with the decoder's start token
        return Request(self.to_device(batch), prompt_length=1, finish=finish, max_new_tokens_cap=limit - 1)

    def caption_request(self, image: np.ndarray, detailed: bool) -> Request:
        return self.task_request(image, DETAILED if detailed else CAPTION)

    def read_request(self, image: np.ndarray) -> Request:
        return self.task_request(image, OCR_REGIONS)

    def ground_request(self, image: np.ndarray, text: str) -> Request:
        return self.task_request(image, GROUNDING, text)
