"""OWLv2 / OWL-ViT adapter: per-patch boxes, class embeddings and text/image query logits.

The image is embedded once; text queries are embedded in chunks (each query is independent, so
chunking only bounds memory and the merged logits equal one call with every query). Boxes come
back normalized to the model frame: OWLv2 pads the image to a square at the bottom/right (so
pixels = normalized * max(H, W)); OWL-ViT resizes without padding (pixels = normalized * (W, H)).
"""

from __future__ import annotations

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.runtime import autocast


class OwlAdapter:
    def __init__(self, model, processor, family: str, device: torch.device, dtype: torch.dtype):
        self.model = model.to(device).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = family  # "owlv2" or "owlvit"
        self.device = device
        self.dtype = dtype
        self.base = model.owlv2 if family == "owlv2" else model.owlvit
        self.max_tokens = int(min(self.tokenizer.model_max_length, model.config.text_config.max_position_embeddings))
        self.name = ""

    # ------------------------------------------------------------------ frames
    def box_scale(self, height: int, width: int) -> torch.Tensor:
        """Factors turning normalized model-frame XYXY into original-image pixels."""
        if self.family == "owlv2":
            s = float(max(height, width))
            return torch.tensor([s, s, s, s])
        return torch.tensor([float(width), float(height), float(width), float(height)])

    # ------------------------------------------------------------------ image
    @torch.no_grad()
    def embed_image(self, pixels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """HxWx3 uint8 -> (1 x P x D patch features, 1 x P x 4 normalized cxcywh boxes, feature map)."""
        enc = self.processor.image_processor(images=pixels, return_tensors="pt", input_data_format="channels_last")
        pixel_values = enc["pixel_values"].to(self.device)
        with autocast(self.device, self.dtype):
            feature_map = self.model.image_embedder(pixel_values=pixel_values)[0]
        feature_map = feature_map.float()
        b, h, w, d = feature_map.shape
        feats = feature_map.reshape(b, h * w, d)
        boxes = self.model.box_predictor(feats, feature_map)
        return feats, boxes, feature_map

    @torch.no_grad()
    def class_embeddings(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-patch class embeddings (the image-side vectors text queries are compared with)."""
        return self.model.class_predictor(feats)[1]

    # ------------------------------------------------------------------ text
    def tokenize(self, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize queries padded to the model's text length; a query longer than it is an error."""
        for name in classes:
            n = len(self.tokenizer(name)["input_ids"])
            if n > self.max_tokens:
                raise PromptError(
                    f"class name '{name}' is {n} tokens long; {self.family} reads at most {self.max_tokens} tokens "
                    "per query (including start/end); shorten it"
                )
        enc = self.tokenizer(classes, padding="max_length", max_length=self.max_tokens, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    @torch.no_grad()
    def text_embeddings(self, classes: list[str]) -> torch.Tensor:
        """N x D L2-normalized query embeddings (as the model's forward computes them)."""
        ids, mask = self.tokenize(classes)
        out = self.base.get_text_features(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        emb = out.pooler_output if hasattr(out, "pooler_output") else out
        emb = emb.float()
        return emb / torch.linalg.norm(emb, ord=2, dim=-1, keepdim=True)

    @torch.no_grad()
    def query_logits(self, feats: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """P x N logits of each patch for each query embedding (N x D)."""
        mask = torch.ones((1, queries.shape[0]), dtype=torch.bool, device=feats.device)
        logits, _ = self.model.class_predictor(feats, queries[None].to(feats.device), mask)
        return logits[0].float().cpu()
