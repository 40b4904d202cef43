"""Grounding DINO adapter: text prompt -> raw per-query token scores and boxes.

The text prompt is built the way ``GroundingDinoProcessor`` builds it ("cat. remote control."):
``[CLS] tok(cat) . tok(remote control) . [SEP]`` with lower-cased class names; the token span of
each class is kept so a box can be mapped to the class whose tokens scored highest (by id, so
duplicate words or substrings of other names cannot confuse it). The model's text encoder takes at
most ``max_text_len`` (256) tokens including [CLS], [SEP] and the " . " separators; longer class
lists are split into chunks (:meth:`GroundingDinoAdapter.chunk_classes`), never truncated.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.runtime import autocast

DOT_TOKEN = 1012  # '.' in bert-base-uncased; Grounding DINO hard-codes it as the phrase separator


@dataclass
class TextChunk:
    """One text prompt: the classes it holds (indices into the full list) and their token spans."""

    class_indices: list[int]
    input_ids: torch.Tensor  # 1 x T
    spans: list[tuple[int, int]]  # [start, end) token positions of each class in input_ids


class GroundingDinoAdapter:
    family = "grounding-dino"

    def __init__(self, model, processor, device: torch.device, dtype: torch.dtype, family: str = "grounding-dino"):
        self.family = family  # or "mm-grounding-dino": the same text handling and outputs
        self.model = model.to(device).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.device = device
        self.dtype = dtype
        self.max_text_len = int(model.config.max_text_len)
        self.name = ""

    # ------------------------------------------------------------------ text
    def class_tokens(self, classes: list[str]) -> list[list[int]]:
        """Token ids of each class name (lower-cased like the processor does; no special tokens)."""
        out = []
        for name in classes:
            ids = self.tokenizer(name.strip().lower(), add_special_tokens=False)["input_ids"]
            if not ids:
                raise PromptError(f"class name '{name}' has no tokens for this model's tokenizer; use a word")
            out.append(list(ids))
        return out

    def chunk_classes(self, token_lists: list[list[int]]) -> list[TextChunk]:
        """Pack classes in order into prompts of at most ``max_text_len`` tokens (each class costs
        its tokens plus one '.'; each prompt adds [CLS] and [SEP])."""
        budget = self.max_text_len - 2
        chunks: list[list[int]] = [[]]
        used = 0
        for i, ids in enumerate(token_lists):
            cost = len(ids) + 1
            if cost > budget:
                raise PromptError(
                    f"class #{i} is {len(ids)} tokens long; Grounding DINO reads at most {budget - 1} tokens per class"
                )
            if used + cost > budget:
                chunks.append([])
                used = 0
            chunks[-1].append(i)
            used += cost
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        out = []
        for idx in chunks:
            ids = [cls_id]
            spans = []
            for i in idx:
                start = len(ids)
                ids += token_lists[i]
                spans.append((start, len(ids)))
                ids.append(DOT_TOKEN)
            ids.append(sep_id)
            out.append(TextChunk(idx, torch.tensor([ids], dtype=torch.long), spans))
        return out

    # ------------------------------------------------------------------ image
    def preprocess(self, pixels: np.ndarray) -> dict[str, torch.Tensor]:
        """HxWx3 uint8 -> pixel_values / pixel_mask with the checkpoint's own image processor."""
        enc = self.processor.image_processor(images=pixels, return_tensors="pt", input_data_format="channels_last")
        return {"pixel_values": enc["pixel_values"].to(self.device), "pixel_mask": enc["pixel_mask"].to(self.device)}

    @torch.no_grad()
    def forward(self, image_inputs: dict[str, torch.Tensor], chunk: TextChunk) -> tuple[torch.Tensor, torch.Tensor]:
        """One prompt -> (Q x T token probabilities, Q x 4 normalized cxcywh boxes), float32 on CPU."""
        ids = chunk.input_ids.to(self.device)
        with autocast(self.device, self.dtype):
            out = self.model(
                input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids), **image_inputs
            )
        probs = torch.sigmoid(out.logits[0].float())[:, : ids.shape[1]]
        return probs.cpu(), out.pred_boxes[0].float().cpu()

    @contextlib.contextmanager
    def reuse_backbone(self):
        """Within this context the image backbone runs once per image; later text chunks reuse its output
        (the backbone does not see the text, so this changes nothing but the time)."""
        backbone = self.model.model.backbone
        original = backbone.forward
        cache: dict[int, object] = {}

        def cached(pixel_values, pixel_mask):
            key = id(pixel_values)
            if key not in cache:
                cache.clear()
                cache[key] = (pixel_values, original(pixel_values, pixel_mask))
            return cache[key][1]

        backbone.forward = cached
        try:
            yield
        finally:
            backbone.forward = original
