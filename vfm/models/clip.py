"""CLIP / SigLIP / SigLIP 2 adapter: L2-normalized image and text embeddings, logit scale and bias.

The logits are exactly those of the models' own forward:

* CLIP: ``logits = exp(logit_scale) * img @ txt.T``; probabilities are a softmax over the labels.
* SigLIP / SigLIP 2: ``logits = exp(logit_scale) * img @ txt.T + logit_bias``; each label's
  probability is ``sigmoid(logit)`` on its own (trained with a pairwise sigmoid loss), so they do not
  sum to 1.

Text is tokenized as each family is used: CLIP pads to the longest prompt, SigLIP pads to the
model's text length (it pools the last position). A prompt longer than the model reads is an error,
never silently truncated.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vfm.errors import ModelError, PromptError
from vfm.runtime import autocast

#: Texts and images per forward pass (bounds memory only; results do not depend on it).
TEXT_CHUNK = 256
IMAGE_CHUNK = 64


def _pooled(out) -> torch.Tensor:
    """``get_*_features`` returns a tensor in older transformers, an output with pooler_output in 5.x."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True)


class ContrastiveAdapter:
    """A loaded CLIP-like model and its processor on one device."""

    def __init__(self, model, processor, family: str, device: torch.device, dtype: torch.dtype, identity: str = ""):
        self.model = model.to(device).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.family = family  # "clip" or "siglip"
        self.device = device
        self.dtype = dtype
        self.identity = identity
        self.name = ""
        text_cfg = model.config.text_config
        self.max_tokens = int(min(self.tokenizer.model_max_length or 10**6, text_cfg.max_position_embeddings))
        #: Number of text-encoder forward passes made (lets tests prove a cache was used).
        self.text_forward_calls = 0
        self.image_forward_calls = 0

    @property
    def activation(self) -> str:
        return "softmax" if self.family == "clip" else "sigmoid"

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().float().exp().item())

    @property
    def logit_bias(self) -> float:
        bias = getattr(self.model, "logit_bias", None)
        return 0.0 if bias is None else float(bias.detach().float().item())

    @property
    def image_size(self) -> int:
        return int(self.model.config.vision_config.image_size)

    # ------------------------------------------------------------------ text
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        texts = list(texts)
        enc = self.tokenizer(texts, padding=False, truncation=False)
        for text, ids in zip(texts, enc["input_ids"]):
            if len(ids) > self.max_tokens:
                raise PromptError(
                    f"the text '{text[:60]}' is {len(ids)} tokens long; this model reads at most {self.max_tokens} "
                    "(including start/end); shorten the label or template"
                )
        if self.family == "clip":
            enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        else:
            enc = self.tokenizer(texts, padding="max_length", max_length=self.max_tokens, return_tensors="pt")
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask") if k in enc}

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """N x D L2-normalized text embeddings (float32, on CPU)."""
        texts = list(texts)
        if not texts:
            return torch.zeros((0, self.embed_dim), dtype=torch.float32)
        outs = []
        for i in range(0, len(texts), TEXT_CHUNK):
            enc = self.tokenize(texts[i : i + TEXT_CHUNK])
            self.text_forward_calls += 1
            with autocast(self.device, self.dtype):
                emb = _pooled(self.model.get_text_features(**enc))
            outs.append(_normalize(emb.float()).cpu())
        return torch.cat(outs)

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.projection_dim if self.family == "clip" else self.model.config.text_config.hidden_size)

    # ------------------------------------------------------------------ images
    def preprocess(self, images: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        enc = self.image_processor(images=list(images), return_tensors="pt", input_data_format="channels_last")
        return {k: v.to(self.device) for k, v in enc.items() if isinstance(v, torch.Tensor)}

    @torch.no_grad()
    def embed_images(self, images: Sequence[np.ndarray], chunk: int = IMAGE_CHUNK) -> torch.Tensor:
        """N HxWx3 uint8 images -> N x D L2-normalized image embeddings (float32, on CPU)."""
        images = list(images)
        if not images:
            return torch.zeros((0, self.embed_dim), dtype=torch.float32)
        outs = []
        for i in range(0, len(images), chunk):
            enc = self.preprocess(images[i : i + chunk])
            if "pixel_values" in enc:
                enc["pixel_values"] = enc["pixel_values"].to(torch.float32)
            self.image_forward_calls += 1
            with autocast(self.device, self.dtype):
                emb = _pooled(self.model.get_image_features(**enc))
            outs.append(_normalize(emb.float()).cpu())
        return torch.cat(outs)

    # ------------------------------------------------------------------ scores
    def logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """N_images x N_texts logits, as the model's forward computes ``logits_per_image``."""
        sims = image_embeds.float() @ text_embeds.float().T
        return sims * self.logit_scale + self.logit_bias

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=-1) if self.family == "clip" else torch.sigmoid(logits)


# ---------------------------------------------------------------------------------- loading
def load_contrastive(name: str, device: torch.device, dtype: torch.dtype) -> ContrastiveAdapter:
    """Load a CLIP / SigLIP / SigLIP 2 checkpoint (alias, hub id or local directory)."""
    from vfm.models.registry import load_pretrained, read_hub_json, resolve

    resolved = resolve(name, task="classify")
    config = read_hub_json(resolved.source, "config.json", required=True, name=name) or {}
    model_type = config.get("model_type")
    if model_type == "clip":
        from transformers import CLIPModel as Model
    elif model_type == "siglip":
        from transformers import SiglipModel as Model
    elif model_type == "siglip2":
        from transformers import Siglip2Model as Model
    else:
        raise ModelError(f"model '{name}' has model_type '{model_type}'; classification needs a CLIP or SigLIP checkpoint",
                         model_name=name)
    model = load_pretrained(Model.from_pretrained, resolved)
    from transformers import AutoProcessor

    from vfm.models.processors import load_processor

    processor = load_processor(AutoProcessor, resolved)
    adapter = ContrastiveAdapter(model, processor, resolved.family, device, dtype, identity=model_identity(resolved))
    adapter.name = name
    return adapter


def model_identity(resolved) -> str:
    """A string that changes when the checkpoint changes: source, config hash and weight files' size/mtime.

    Used as part of on-disk cache keys (tag embeddings). Hub checkpoints are identified by their
    cache snapshot directory (which contains the commit hash) when found.
    """
    directory: Path | None = None
    if resolved.is_local:
        directory = Path(resolved.source).resolve()
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(resolved.source, "config.json")
            if isinstance(found, str):
                directory = Path(found).parent
        except Exception:  # noqa: BLE001 - identity falls back to the id
            directory = None
    parts = [resolved.family, resolved.source]
    if directory is not None and directory.is_dir():
        parts.append(str(directory))
        cfg = directory / "config.json"
        if cfg.is_file():
            parts.append(hashlib.sha256(cfg.read_bytes()).hexdigest())
        for f in sorted(directory.iterdir()):
            if f.suffix in (".safetensors", ".bin") or f.name.startswith("tokenizer"):
                st = f.stat()
                parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return json.dumps(parts)
