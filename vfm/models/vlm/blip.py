"""BLIP: one short caption (BlipForConditionalGeneration) or a short answer (BlipForQuestionAnswering).

Both decode with the text decoder from its start token ([DEC]), which the output keeps.
"""

from __future__ import annotations

import numpy as np

from vfm.models.vlm.base import Request, VlmAdapter, pil


class BlipCaptionAdapter(VlmAdapter):
    family = "blip"
    captions = True

    def caption_request(self, image: np.ndarray, detailed: bool) -> Request:
        batch = self.processor(images=pil(image), return_tensors="pt")
        return Request(self.to_device(batch), prompt_length=1)


class BlipVqaAdapter(VlmAdapter):
    family = "blip-vqa"
    asks = True

    def ask_request(self, image: np.ndarray, question: str) -> Request:
        batch = self.processor(images=pil(image), text=question, return_tensors="pt")
        return Request(self.to_device(batch), prompt_length=1)
