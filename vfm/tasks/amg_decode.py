"""Decoding a grid of single-point prompts for "segment everything", in two steps.

``PointDecoder.run(points)`` runs the prompt encoder and the two-way transformer and returns the
predicted IoUs of SAM's three multimask outputs; ``masks(state, rows)`` then computes the low-res
mask logits only for the points asked for. The generator asks only for points with at least one
mask above ``pred_iou_thresh``: the reference computes and then throws the others away.

For SAM (and SlimSAM) the transformers submodules are called directly, with the work that is the
same for every point done once per image (the exact same arithmetic, reordered):
- the dense "no mask" embedding added to the image embedding, and the image positional encoding;
- in the first transformer layer the image tokens are still the image embedding, so the keys and
  values of the token->image attention and the queries of the image->token attention are
  projected once, not once per point;
- only the three multimask outputs are computed (the reference computes four and drops one).
Other families (SAM-HQ, SAM 2) use the adapter's ``decode`` for both steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vfm.models.promptable import Embedding, PromptableModel


@dataclass
class DecodeState:
    iou: torch.Tensor  # P x 3
    extra: Any


class PointDecoder:
    """Single positive point per prompt, multimask output, for one image embedding."""

    def __init__(self, model: PromptableModel, embedding: Embedding):
        self.model = model
        self.embedding = embedding
        self.fast = model.family == "sam" and type(model.model).__name__ == "SamModel"
        self._shared: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ public
    @torch.inference_mode()
    def run(self, points_model: np.ndarray) -> DecodeState:
        """``points_model``: Px2 XY in the model frame. Returns the state with P x 3 predicted IoUs."""
        pts = torch.as_tensor(np.asarray(points_model, dtype=np.float32))
        if not self.fast:
            labels = torch.ones((len(pts), 1), dtype=torch.int64)
            low, iou = self.model.decode(self.embedding, pts[:, None], labels, None, None, True)
            return DecodeState(iou=iou.float().cpu(), extra=low.float().cpu())
        return self._run_sam(pts)

    @torch.inference_mode()
    def masks(self, state: DecodeState, rows: torch.Tensor) -> torch.Tensor:
        """Low-res logits (len(rows) x 3 x L x L) of the points ``rows`` (indices into the batch)."""
        if not self.fast:
            return state.extra[rows]
        return self._masks_sam(state, rows)

    # ------------------------------------------------------------------ SAM fast path
    def _shared_tensors(self) -> dict[str, torch.Tensor]:
        if self._shared is not None:
            return self._shared
        m = self.model.model
        dev = self.model.device
        image = self.embedding.tensors["image_embeddings"].to(dev).float()  # 1 x C x h x w
        dense = m.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        src = (image + dense).flatten(2).transpose(1, 2)[0]  # T x C
        pe = m.get_image_wide_positional_embeddings().flatten(2).transpose(1, 2)[0]  # T x C
        layer0 = m.mask_decoder.transformer.layers[0]
        t2i, i2t = layer0.cross_attn_token_to_image, layer0.cross_attn_image_to_token
        key_in = src + pe
        self._shared = {
            "src": src,
            "pe": pe,
            "t2i_k": t2i.k_proj(key_in),
            "t2i_v": t2i.v_proj(src),
            "i2t_q": i2t.q_proj(key_in),
            "hw": torch.tensor(image.shape[-2:]),
        }
        return self._shared

    def _run_sam(self, pts: torch.Tensor) -> DecodeState:
        m = self.model.model
        dev = self.model.device
        dec = m.mask_decoder
        pe_enc = m.prompt_encoder
        sh = self._shared_tensors()
        p = len(pts)
        # Prompt encoder: the point (+0.5, pixel centre) and the padding point (label -1).
        size = pe_enc.input_image_size
        coords = torch.zeros((1, p, 2, 2), device=dev)
        coords[0, :, 0] = pts.to(dev) + 0.5
        emb = pe_enc.shared_embedding(coords, (size, size))  # 1 x P x 2 x C
        point = emb[0, :, 0] + pe_enc.point_embed[1].weight
        pad = pe_enc.not_a_point_embed.weight.expand(p, -1)
        sparse = torch.stack([point, pad], dim=1)  # P x 2 x C
        out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens[None].expand(p, -1, -1), sparse], dim=1)  # P x K x C

        tr = dec.transformer
        queries = tokens
        qpe = tokens
        keys = None  # None while the image tokens are still shared (layer 0)
        src, kpe = sh["src"], sh["pe"]
        for i, layer in enumerate(tr.layers):
            if layer.skip_first_layer_pe:
                queries = _attn(layer.self_attn, queries, queries, queries)
            else:
                q = queries + qpe
                queries = queries + _attn(layer.self_attn, q, q, queries)
            queries = layer.layer_norm1(queries)
            q = queries + qpe
            if keys is None:
                attn = _attn(layer.cross_attn_token_to_image, q, None, None, k_proj=sh["t2i_k"], v_proj=sh["t2i_v"])
            else:
                attn = _attn(layer.cross_attn_token_to_image, q, keys + kpe, keys)
            queries = layer.layer_norm2(queries + attn)
            queries = layer.layer_norm3(queries + layer.mlp(queries))
            q = queries + qpe
            if keys is None:
                out = _attn(layer.cross_attn_image_to_token, None, q, queries, q_proj=sh["i2t_q"], batch=p)
                keys = layer.layer_norm4(src + out)
            else:
                keys = layer.layer_norm4(keys + _attn(layer.cross_attn_image_to_token, keys + kpe, q, queries))
        if keys is None:  # a decoder without layers
            keys = src.expand(p, -1, -1)
        q = queries + qpe
        queries = queries + _attn(tr.final_attn_token_to_image, q, keys + kpe, keys)
        queries = tr.layer_norm_final_attn(queries)
        iou = dec.iou_prediction_head(queries[:, 0])[:, 1:]
        return DecodeState(iou=iou.float().cpu(), extra=(keys, queries))

    def _masks_sam(self, state: DecodeState, rows: torch.Tensor) -> torch.Tensor:
        dec = self.model.model.mask_decoder
        keys, queries = state.extra
        rows = rows.to(keys.device)
        keys, queries = keys[rows], queries[rows]
        n = len(rows)
        h, w = (int(v) for v in self._shared_tensors()["hw"])
        if n == 0:
            L = self.model.low_res_size
            return torch.zeros((0, 3, L, L))
        x = keys.transpose(1, 2).reshape(n, -1, h, w)
        x = dec.activation(dec.upscale_layer_norm(dec.upscale_conv1(x)))
        x = dec.activation(dec.upscale_conv2(x))
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](queries[:, 1 + i]) for i in range(1, dec.num_mask_tokens)], 1)
        c, H, W = x.shape[1:]
        masks = (hyper @ x.reshape(n, c, H * W)).reshape(n, -1, H, W)
        return masks.float().cpu()


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(..., N, D) -> (..., H, N, D/H)."""
    *lead, n, d = x.shape
    return x.reshape(*lead, n, n_heads, d // n_heads).transpose(-3, -2)


def _attn(module, query, key, value, *, q_proj=None, k_proj=None, v_proj=None, batch: int | None = None) -> torch.Tensor:
    """transformers' SamAttention forward with optional precomputed (shared, unbatched) projections."""
    q = module.q_proj(query) if q_proj is None else q_proj
    k = module.k_proj(key) if k_proj is None else k_proj
    v = module.v_proj(value) if v_proj is None else v_proj
    heads = module.num_attention_heads
    q, k, v = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    b = max(t.shape[0] if t.dim() == 4 else 1 for t in (q, k, v))
    if batch is not None:
        b = batch
    q, k, v = (t.expand(b, -1, -1, -1) if t.dim() == 3 or t.shape[0] != b else t for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, scale=module.scaling)
    out = out.transpose(1, 2).reshape(b, out.shape[2], -1)
    return module.out_proj(out)
