"""Image and text embeddings: CLIP, SigLIP / SigLIP 2 (both towers) and DINOv2 / DINOv3 (images only).

Every vector is L2-normalised float32, so a dot product is a cosine similarity.

* CLIP / SigLIP / SigLIP 2: ``get_image_features`` / ``get_text_features`` of the checkpoint (the
  projected embeddings its zero-shot logits use), exactly as transformers computes them.
* DINOv2 / DINOv3 (``pooling``):

  - ``cls`` (default): the model's ``pooler_output``, the final-layer-normed CLS token;
  - ``mean``: the mean of the final-layer-normed patch tokens (register tokens of DINOv3 excluded),
    the "average pooled patch tokens" DINOv2's linear probes concatenate with the CLS token.

Images go through the checkpoint's own image processor (resize, crop, normalise) in batches of
``batch`` images; the batch size bounds memory only, never the numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vfm.errors import ModelError, PromptError
from vfm.runtime import autocast, resolve_device, resolve_precision

DEFAULT_EMBED_MODEL = "clip-vit-base-32"
POOLINGS = ("cls", "mean")
#: Images per forward pass.
BATCH = 16


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass(frozen=True)
class EmbedderInfo:
    """What identifies the vectors an index holds: a query must come from the same model and pooling."""

    model: str
    family: str
    dim: int
    pooling: str
    identity: str  # hash of the checkpoint's identity (config, weight files)
    text: bool

    def to_json(self) -> dict:
        return {"model": self.model, "family": self.family, "dim": self.dim, "pooling": self.pooling,
                "identity": self.identity, "text": self.text}


class Embedder:
    """A loaded embedding model. Use :meth:`load`."""

    def __init__(self, info: EmbedderInfo, image_fn, text_fn=None):
        self.info = info
        self._image_fn = image_fn
        self._text_fn = text_fn

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def has_text(self) -> bool:
        return self._text_fn is not None

    @classmethod
    def load(cls, name: str = DEFAULT_EMBED_MODEL, *, device: str | None = None, precision: str = "fp32",
             pooling: str = "cls") -> "Embedder":
        from vfm.models.clip import model_identity
        from vfm.models.registry import resolve

        if pooling not in POOLINGS:
            raise PromptError(f"--pooling '{pooling}' is not one of {', '.join(POOLINGS)}")
        resolved = resolve(name, task="embed")
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        identity = hashlib.sha256(model_identity(resolved).encode()).hexdigest()[:16]
        if resolved.family in ("clip", "siglip"):
            if pooling != "cls":
                raise PromptError(f"--pooling mean is for DINOv2 / DINOv3; '{name}' is a {resolved.family} model whose "
                                  "embedding is its projected pooled output")
            from vfm.models.clip import load_contrastive

            adapter = load_contrastive(name, dev, dtype)
            info = EmbedderInfo(name, resolved.family, adapter.embed_dim, "projection", identity, True)
            return cls(info, lambda images: adapter.embed_images(images, chunk=BATCH).numpy(),
                       lambda texts: adapter.embed_texts(texts).numpy())
        if resolved.family in ("dinov2", "dinov3"):
            backbone = _VisionBackbone.load(resolved, dev, dtype, pooling)
            info = EmbedderInfo(name, resolved.family, backbone.dim, pooling, identity, False)
            return cls(info, backbone.embed)
        raise ModelError(f"model '{name}' ({resolved.family}) has no embedding adapter", model_name=name)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """N HxWx3 uint8 RGB images -> N x dim float32, each row of norm 1."""
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(self._image_fn(images), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """N texts -> N x dim float32 (CLIP / SigLIP only)."""
        if self._text_fn is None:
            raise PromptError(f"'{self.info.model}' is an image-only model ({self.info.family}): it has no text tower; "
                              "search by --image or --id, or index with a CLIP / SigLIP model for text queries")
        texts = [t.strip() for t in texts]
        if not texts or any(not t for t in texts):
            raise PromptError("a text query is empty; give some words, e.g. \"a red car\"")
        return np.ascontiguousarray(self._text_fn(texts), dtype=np.float32)


class _VisionBackbone:
    """DINOv2 / DINOv3 ViT: CLS (pooler_output) or mean of patch tokens, L2-normalised."""

    def __init__(self, model, processor, device, dtype, pooling: str):
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.pooling = pooling
        self.skip = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
        self.dim = int(model.config.hidden_size)

    @classmethod
    def load(cls, resolved, device, dtype, pooling):
        from transformers import AutoImageProcessor, AutoModel

        from vfm.models.processors import load_processor
        from vfm.models.registry import load_pretrained

        model = load_pretrained(AutoModel.from_pretrained, resolved)
        processor = load_processor(AutoImageProcessor, resolved)
        return cls(model, processor, device, dtype, pooling)

    @torch.no_grad()
    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        outs = []
        for i in range(0, len(images), BATCH):
            enc = self.processor(images=list(images[i:i + BATCH]), return_tensors="pt", input_data_format="channels_last")
            pixels = enc["pixel_values"].to(self.device, torch.float32)
            with autocast(self.device, self.dtype):
                out = self.model(pixel_values=pixels)
            if self.pooling == "cls":
                emb = out.pooler_output
            else:
                emb = out.last_hidden_state[:, self.skip:].float().mean(dim=1)
            outs.append(_normalize(emb.float()).cpu())
        return torch.cat(outs).numpy()
