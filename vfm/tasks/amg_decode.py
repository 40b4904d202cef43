"""Decoding a grid of single-point prompts for "segment everything", in two steps.

``PointDecoder.run(points)`` runs the prompt encoder and the two-way transformer and returns the
predicted IoUs of SAM's three multimask outputs; ``masks(state, rows)`` then computes the low-res
mask logits only for the points asked for. The generator asks only for points with at least one
mask above ``pred_iou_thresh``: the reference computes and then throws the others away.

For SAM (and SlimSAM) both steps go through :class:`vfm.models.sam_decoder.SamDecoder` (the work
shared by every point done once per image, projections on the prompt side, only the three
multimask outputs computed). Other families (SAM-HQ, SAM 2) use the adapter's ``decode`` for both
steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vfm.models.promptable import Embedding, PromptableModel

RUN_CHUNK = 16  # points per transformer pass inside one generator batch (bounds peak memory)


@dataclass
class DecodeState:
    iou: torch.Tensor  # P x 3
    extra: Any


class PointDecoder:
    """Single positive point per prompt, multimask output, for one image embedding."""

    def __init__(self, model: PromptableModel, embedding: Embedding):
        self.model = model
        self.embedding = embedding
        self.sam = getattr(model, "fast_decoder", None)
        self.fast = self.sam is not None
        self._ids = list(range(1, self.sam.num_mask_tokens)) if self.fast else []  # the multimask outputs

    @torch.inference_mode()
    def run(self, points_model: np.ndarray) -> DecodeState:
        """``points_model``: Px2 XY in the model frame. Returns the state with P x 3 predicted IoUs."""
        pts = torch.as_tensor(np.asarray(points_model, dtype=np.float32))[:, None]
        labels = torch.ones((len(pts), 1), dtype=torch.int64)
        if not self.fast:
            low, iou = self.model.decode(self.embedding, pts, labels, None, None, True)
            return DecodeState(iou=iou.float().cpu(), extra=low.float().cpu())
        st = self.sam.image_state(self.embedding.tensors["image_embeddings"].to(self.model.device))
        tokens, _ = self.sam.prompt_tokens(pts, labels, None, None)
        rows = self.sam.output_rows(self._ids)
        # a few points at a time through the transformer (its per-point activations are several
        # image-sized tensors); only each point's final image tokens are kept for `masks`
        keys = queries = None
        for i in range(0, len(tokens), RUN_CHUNK):
            q, k, _ = self.sam.transformer(st, tokens[i : i + RUN_CHUNK], out_tokens=rows)
            if keys is None:
                keys = k.new_empty((len(tokens), *k.shape[1:]))
                queries = q.new_empty((len(tokens), *q.shape[1:]))
            keys[i : i + RUN_CHUNK], queries[i : i + RUN_CHUNK] = k, q
        iou = self.sam.iou(queries[:, 0])[:, self._ids]
        return DecodeState(iou=iou.float().cpu(), extra=(st, keys, queries[:, 1:]))

    @torch.inference_mode()
    def masks(self, state: DecodeState, rows: torch.Tensor) -> torch.Tensor:
        """Low-res logits (len(rows) x 3 x L x L) of the points ``rows`` (indices into the batch)."""
        if not self.fast:
            return state.extra[rows]
        st, keys, mask_tokens = state.extra
        rows = rows.to(keys.device)
        return self.sam.masks(st, keys[rows], mask_tokens[rows], self._ids).float().cpu()
