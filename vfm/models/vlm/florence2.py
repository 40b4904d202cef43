"""Florence-2: captions, detailed captions, OCR with regions, phrase grounding — one model, task tokens.

Each job is a task token (``<CAPTION>``, ``<DETAILED_CAPTION>``, ``<OCR_WITH_REGION>``,
``<CAPTION_TO_PHRASE_GROUNDING>`` + text); the processor expands it into its instruction, and the
generated text (special tokens kept: ``<loc_N>`` are coordinates) goes through the processor's own
``post_process_generation`` with the image size, which turns location bins into pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfm.models.vlm.base import Request, VlmAdapter, pil

CAPTION, DETAILED, OCR_REGIONS, GROUNDING = "<CAPTION>", "<DETAILED_CAPTION>", "<OCR_WITH_REGION>", "<CAPTION_TO_PHRASE_GROUNDING>"


class Florence2Adapter(VlmAdapter):
    family = "florence2"
    captions = detailed = reads = grounds = True

    def task_request(self, image: np.ndarray, task: str, text: str = "") -> Request:
        batch = self.processor(text=task + text, images=pil(image), return_tensors="pt")
        size = (int(image.shape[1]), int(image.shape[0]))  # (width, height), as post_process_generation takes it

        def finish(new_ids, sequence) -> Any:
            raw = self.tokenizer.decode(sequence, skip_special_tokens=False)
            return self.processor.post_process_generation(raw, task=task, image_size=size)[task]

        # the output starts with the decoder's start token
        return Request(self.to_device(batch), prompt_length=1, finish=finish)

    def caption_request(self, image: np.ndarray, detailed: bool) -> Request:
        return self.task_request(image, DETAILED if detailed else CAPTION)

    def read_request(self, image: np.ndarray) -> Request:
        return self.task_request(image, OCR_REGIONS)

    def ground_request(self, image: np.ndarray, text: str) -> Request:
        return self.task_request(image, GROUNDING, text)
