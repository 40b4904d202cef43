"""SAM's prompt encoder + mask decoder (transformers ``SamModel``), rearranged for inference.

The same arithmetic as ``SamModel.forward(image_embeddings=...)``, in a different order and with
less of it. A click spends most of its time on work that is either the same for every prompt on an
image, or much larger than it needs to be:

1. **Per image, not per prompt.** The positional encoding of the image grid, the "no mask" dense
   embedding added to the image embedding and, in the first two-way layer (where the image tokens
   are still the image embedding), the keys/values of token→image attention and the queries of
   image→token attention. Computed once per embedding (:meth:`SamDecoder.image_state`, the last
   one is kept) and reused by every prompt and every batch.
2. **Projections on the small side.** Attention between K prompt tokens (K ≈ 7 for a click) and
   T = 4096 image tokens projects all T image tokens to D = 128 dims (T·C·D multiply-adds per
   projection). While K·heads < D it is cheaper to move the projection onto the prompt tokens:
   ``q·(W_k x + b_k) = (W_kᵀq)·x + q·b_k`` (the last term is constant over keys and cancels in the
   softmax) and ``softmax(s)·(W_v x + b_v) = W_v (softmax(s)·x) + b_v`` (the weights sum to one);
   likewise for image→token attention, whose output projection moves onto the K value vectors.
3. **Upscaling as matrix products.** The two stride-2, kernel-2 transposed convolutions are plain
   matrix products in a channels-last layout (LayerNorm over contiguous channels, no permutes); the
   spatial layout is restored only for the final masks, and only the mask tokens asked for get a
   hypernetwork and a mask. They run a few hundred image tokens at a time, so the upscaled
   activations stay in the CPU cache (and memory stays flat however many prompts come at once).
4. **The first upscaling product built along the layers.** LayerNorm is a per-token affine map,
   so the first transposed convolution of the final image tokens can be carried through the two
   layers from the LayerNorm statistics and the attention terms, starting from a product of the
   shared embedding made once per image (:meth:`SamDecoder.upscale_chain`): per prompt, two
   T x 57 x 256 products instead of one T x 256 x 256.

Results equal transformers' to float rounding (``tests/test_sam_decoder.py``); SAM-HQ and SAM 2,
whose decoders differ, keep their model's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

UPSCALE_CHUNK_BYTES = 1 << 20  # upscaled activations per chunk of image tokens (about an L2 cache)


@dataclass
class ImageState:
    """Per-embedding tensors shared by every prompt (token layout: T = h·w rows, C channels)."""

    source: torch.Tensor  # the 1xCxhxw embedding this state was computed from
    image: torch.Tensor  # T x C, the image embedding as tokens
    src: torch.Tensor  # T x C, image + "no mask" dense embedding
    hw: tuple[int, int]
    t2i_k: torch.Tensor  # T x D, layer 0 token->image keys of (src + pe)
    t2i_v: torch.Tensor  # T x D, layer 0 token->image values of src
    i2t_q: torch.Tensor  # T x D, layer 0 image->token queries of (src + pe)
    src_u: torch.Tensor | None = None  # T x 4c1, src @ U_0 (see SamDecoder.upscale_chain); made on first use


class SamDecoder:
    """Exact, faster replacement for ``SamModel`` prompt decoding given a cached image embedding."""

    def __init__(self, model: torch.nn.Module):
        self.m = model
        self._pe: torch.Tensor | None = None
        self._state: ImageState | None = None
        self._chain: tuple | None = None
        self._upscale: tuple | None = None

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        return type(model).__name__ == "SamModel"

    # ------------------------------------------------------------------ shared per model / image
    @property
    def pe(self) -> torch.Tensor:
        """T x C positional encoding of the image grid (depends on the weights only)."""
        if self._pe is None:
            self._pe = self.m.get_image_wide_positional_embeddings()[0].flatten(1).t().contiguous()
        return self._pe

    @torch.inference_mode()
    def image_state(self, image_embeddings: torch.Tensor) -> ImageState:
        """Tensors shared by all prompts on ``image_embeddings`` (1xCxhxw); the last one is kept."""
        st = self._state
        if st is not None and st.source is image_embeddings:
            return st
        image = image_embeddings[0].flatten(1).t().contiguous()  # T x C
        no_mask = self.m.prompt_encoder.no_mask_embed.weight.reshape(1, -1)
        src = image + no_mask
        layer0 = self.m.mask_decoder.transformer.layers[0]
        t2i, i2t = layer0.cross_attn_token_to_image, layer0.cross_attn_image_to_token
        key_in = src + self.pe
        self._state = ImageState(
            source=image_embeddings,
            image=image,
            src=src,
            hw=tuple(image_embeddings.shape[-2:]),
            t2i_k=t2i.k_proj(key_in),
            t2i_v=t2i.v_proj(src),
            i2t_q=i2t.q_proj(key_in),
        )
        return self._state

    # ------------------------------------------------------------------ prompts -> masks
    @torch.inference_mode()
    def __call__(
        self,
        image_embeddings: torch.Tensor,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same arguments and results as ``PromptableModel.decode`` (P prompts of one shape)."""
        st = self.image_state(image_embeddings)
        tokens, dense = self.prompt_tokens(points, labels, boxes, mask_inputs)
        ids = list(range(1, self.num_mask_tokens)) if multimask else [0]
        queries, keys, conv1 = self.transformer(st, tokens, dense, out_tokens=self.output_rows(ids), track_conv1=True)
        return self.masks(st, keys, queries[:, 1:], ids, conv1_out=conv1), self.iou(queries[:, 0])[:, ids]

    @staticmethod
    def output_rows(ids: Sequence[int]) -> list[int]:
        """Token rows the outputs for mask tokens ``ids`` need: the IoU token, then those mask tokens."""
        return [0] + [1 + i for i in ids]

    @property
    def num_mask_tokens(self) -> int:
        return self.m.mask_decoder.num_mask_tokens

    def prompt_tokens(self, points, labels, boxes, mask_inputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """P x K x C decoder tokens (IoU token, mask tokens, prompt embeddings) and the dense mask embedding."""
        dev = self.m.mask_decoder.iou_token.weight.device
        kw = {
            "input_points": None if points is None else points[:, None].to(dev),
            "input_labels": None if labels is None else labels[:, None].to(dev),
            "input_boxes": None if boxes is None else boxes[:, None].to(dev),
            "input_masks": None if mask_inputs is None else mask_inputs.to(dev),
        }
        sparse, dense = self.m.prompt_encoder(**kw)
        dec = self.m.mask_decoder
        out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        if sparse is None:
            p = 1 if mask_inputs is None else mask_inputs.shape[0]
            return out_tokens[None].expand(p, -1, -1), (None if mask_inputs is None else dense)
        sparse = sparse[:, 0]  # P x N x C
        tokens = torch.cat([out_tokens[None].expand(sparse.shape[0], -1, -1), sparse.to(out_tokens.dtype)], dim=1)
        return tokens, (None if mask_inputs is None else dense)

    def transformer(
        self,
        st: ImageState,
        tokens: torch.Tensor,
        dense: torch.Tensor | None = None,
        out_tokens: Sequence[int] | None = None,
        track_conv1: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The two-way transformer: P x K x C tokens -> (queries P x K' x C, image tokens P x T x C,
        the upscaling's first product of those image tokens P x T x 4c1, or None).

        ``out_tokens``: the token rows wanted from the final token->image attention (K' of them; all
        by default). Every token is a key of the earlier layers, but after the last layer each row of
        the final attention is independent, so rows nobody reads are not computed.
        ``track_conv1``: build that product along the layers (:meth:`upscale_chain`) for :meth:`masks`.
        It is built when the image tokens start from the shared embedding (no mask prompt) and every
        image->token attention runs on the small side; otherwise None is returned.
        """
        tr = self.m.mask_decoder.transformer
        p = tokens.shape[0]
        pe = self.pe
        tracking, z = track_conv1 and dense is None and len(tr.layers) > 0, None
        queries, qpe = tokens, tokens
        # keys is None while the image tokens are the (shared) image embedding: layer 0 without a mask
        keys = None if dense is None else st.image + dense.flatten(2).transpose(1, 2)
        for index, layer in enumerate(tr.layers):
            if layer.skip_first_layer_pe:
                queries = _attention(layer.self_attn, queries, queries, queries)
            else:
                q = queries + qpe
                queries = queries + _attention(layer.self_attn, q, q, queries)
            queries = layer.layer_norm1(queries)
            q = queries + qpe
            t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
            if keys is None and layer is tr.layers[0]:
                attn = _attention(t2i, q, None, None, k=st.t2i_k, v=st.t2i_v)
            else:
                if keys is None:
                    keys = st.src.expand(p, -1, -1)
                key_in = keys + pe
                attn = _tokens_to_image(t2i, q, key_in, keys)
            queries = layer.layer_norm2(queries + attn)
            queries = layer.layer_norm3(queries + layer.mlp(queries))
            q = queries + qpe
            terms = [] if tracking else None
            if keys is None:
                y = _image_to_tokens(i2t, st.src, None, q, queries, q_proj=st.i2t_q, terms=terms)
            else:
                y = _image_to_tokens(i2t, keys, key_in, q, queries, terms=terms)
            ln = layer.layer_norm4
            keys, mean, rstd = torch.native_layer_norm(y, (y.shape[-1],), ln.weight, ln.bias, ln.eps)
            if tracking:
                tracking = bool(terms)  # the attention ran on the small side, so its terms are known
                if tracking:
                    z = self._chain_step(st, z, index, terms, mean, rstd)
        if keys is None:  # a decoder without layers
            keys = st.src.expand(p, -1, -1)
        if out_tokens is not None:
            queries, qpe = queries[:, list(out_tokens)], qpe[:, list(out_tokens)]
        q = queries + qpe
        queries = queries + _tokens_to_image(tr.final_attn_token_to_image, q, keys + pe, keys)
        queries = tr.layer_norm_final_attn(queries)
        return queries, keys, (z if tracking else None)

    def upscale_matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two upscaling transposed convolutions as (weight, bias) matrices in channels-last order.

        ConvTranspose2d(k=2, s=2): ``out[o, 2y+i, 2x+j] = b[o] + sum_c x[c, y, x] W[c, o, i, j]``, so
        with columns ordered (i, j, o) it is ``x @ W' + b'`` per token. Made once (the weights are fixed).
        """
        dec = self.m.mask_decoder
        conv1, conv2 = dec.upscale_conv1, dec.upscale_conv2
        key = (conv1.weight.data_ptr(), conv2.weight.data_ptr(), conv1.weight.dtype)
        if self._upscale is None or self._upscale[0] != key:
            w1 = conv1.weight.permute(0, 2, 3, 1).reshape(conv1.in_channels, -1).contiguous()
            w2 = conv2.weight.permute(0, 2, 3, 1).reshape(conv2.in_channels, -1).contiguous()
            self._upscale = (key, (w1, conv1.bias.repeat(4), w2, conv2.bias.repeat(4)))
        return self._upscale[1]

    def upscale_chain(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per layer l: U_l, s_l = 1ᵀU_l and c_l, such that the upscaling's first product of the
        final image tokens can be built along the layers instead of as a T x C x 4c1 product at the end.

        Each layer ends with ``keys_l = LN_l(y_l)``, ``y_l = keys_{l-1} + probs_l @ mv_l`` (its
        image->token attention; ``mv_l`` are the K·heads value rows). A LayerNorm is a per-token
        affine map, ``LN(y) = r ⊙ (y - μ) ⊙ γ + β``, so with ``U_L = diag(γ_L) W1``,
        ``U_l = diag(γ_l) U_{l+1}``: ``keys_l @ U_{l+1} = r_l ⊙ (y_l @ U_l - μ_l s_l) + β_l @ U_{l+1}`` and
        ``y_l @ U_l = keys_{l-1} @ U_l + probs_l @ (mv_l @ U_l)``. Down to layer 0 the image tokens are
        the shared ``src``, whose ``src @ U_0`` is made once per image. Per prompt that leaves one
        T x (K·heads) x 4c1 product per layer (K·heads ≈ 56) instead of T x C x 4c1 (C = 256).
        """
        u, c_next, _, _ = self.upscale_matrices()  # W1, columns (i, j, o), and its bias
        key = u.data_ptr()  # rebuilt when the weights move
        if self._chain is None or self._chain[0] != key:
            dec = self.m.mask_decoder
            us, ss, cs = [], [], []
            for layer in reversed(dec.transformer.layers):
                ln = layer.layer_norm4
                cs.append(ln.bias @ u + c_next)
                u = ln.weight[:, None] * u
                us.append(u)
                ss.append(u.sum(0))
                c_next = torch.zeros_like(c_next)
            self._chain = (key, (us[::-1], ss[::-1], cs[::-1]))
        return self._chain[1]

    def _chain_step(self, st: ImageState, z, i: int, terms, mean, rstd) -> torch.Tensor:
        """``keys_i @ U_{i+1}`` (P x T x 4c1) from ``keys_{i-1} @ U_i`` (``z``; None at layer 0: src)."""
        us, ss, cs = self.upscale_chain()
        probs, mv = terms
        if z is None:
            if st.src_u is None:
                st.src_u = st.src @ us[0]
            z = st.src_u
        g = torch.cat([mv @ us[i], -ss[i].expand(mv.shape[0], 1, -1)], 1)  # P x (KH + 1) x 4c1
        a = torch.cat([probs, mean], -1)  # P x T x (KH + 1): the mean's column subtracts μ s
        z = torch.baddbmm(z, a, g)
        return torch.addcmul(cs[i], rstd, z)

    def iou(self, iou_token: torch.Tensor) -> torch.Tensor:
        """P x num_mask_tokens predicted IoU (index 0: the single-mask output) from the P x C IoU token."""
        return self.m.mask_decoder.iou_prediction_head(iou_token)

    def masks(
        self, st: ImageState, keys: torch.Tensor, mask_tokens: torch.Tensor, ids: Sequence[int],
        conv1_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Low-res logits P x len(ids) x 4h x 4w of mask tokens ``ids`` (0 = single-mask output), given
        their transformer outputs ``mask_tokens`` (P x len(ids) x C, in the order of ``ids``).

        The upscaling runs a few hundred image tokens at a time: each chunk's activations stay in
        the CPU cache through both products, the LayerNorm and the activations (in place), instead
        of streaming 4h x 4w x C/8 floats through memory four times."""
        dec = self.m.mask_decoder
        p, t, c = keys.shape
        h, w = st.hw
        m = len(ids)
        if p == 0 or m == 0:
            return keys.new_zeros((p, m, 4 * h, 4 * w))
        conv1, conv2, ln = dec.upscale_conv1, dec.upscale_conv2, dec.upscale_layer_norm
        c1, c2 = conv1.out_channels, conv2.out_channels
        w1, b1, w2, b2 = self.upscale_matrices()
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](mask_tokens[:, j]) for j, i in enumerate(ids)], 2)
        out = keys.new_empty((p, t * 16, m))  # rows ordered (y, x, i, j, k, l)
        step = max(1, UPSCALE_CHUNK_BYTES // (16 * c2 * keys.element_size()))
        for b in range(p):
            for s in range(0, t, step):
                e = min(t, s + step)
                if conv1_out is None:
                    x = torch.addmm(b1, keys[b, s:e], w1).view(-1, c1)  # (y x, i j) x c1
                else:
                    x = conv1_out[b, s:e].reshape(-1, c1)
                x = _activation_(dec.activation, F.layer_norm(x, (c1,), ln.weight, ln.bias, ln.eps))
                x = _activation_(dec.activation, torch.addmm(b2, x, w2))  # (y x i j) x (k, l, o)
                torch.mm(x.view(-1, c2), hyper[b], out=out[b, 16 * s : 16 * e])
        out = out.view(p, h, w, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)  # p m y i k x j l
        return out.reshape(p, m, 4 * h, 4 * w)


def _activation_(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, in place for GELU (SAM's activation)."""
    if type(module) is torch.nn.GELU:
        return torch._C._nn.gelu_(x, approximate=module.approximate)
    return module(x)


# ---------------------------------------------------------------------- attention variants
def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(..., N, D) -> (..., H, N, D/H)."""
    *lead, n, d = x.shape
    return x.reshape(*lead, n, n_heads, d // n_heads).transpose(-3, -2)


def _attention(module, query, key, value, *, q=None, k=None, v=None, batch: int | None = None) -> torch.Tensor:
    """transformers' ``SamAttention`` on (P x N x C) inputs; ``q``/``k``/``v`` replace a projection
    with a precomputed (possibly shared, unbatched N x D) one."""
    q = module.q_proj(query) if q is None else q
    k = module.k_proj(key) if k is None else k
    v = module.v_proj(value) if v is None else v
    heads = module.num_attention_heads
    q, k, v = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    b = batch or max(t.shape[0] if t.dim() == 4 else 1 for t in (q, k, v))
    q, k, v = (t.expand(b, -1, -1, -1) if t.dim() == 3 or t.shape[0] != b else t for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, scale=module.scaling)
    return module.out_proj(out.transpose(1, 2).reshape(b, out.shape[2], -1))


def _small_side(module, n_tokens: int) -> bool:
    """Whether projecting on the prompt side (n_tokens x heads vectors of C) beats projecting T tokens to D."""
    return n_tokens * module.num_attention_heads < module.internal_dim


def _tokens_to_image(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``module(query=P x K x C tokens, key/value=P x T x C image tokens)``."""
    p, k_tok, c = query.shape
    if not _small_side(module, k_tok):
        return _attention(module, query, key, value)
    heads = module.num_attention_heads
    d = module.internal_dim // heads
    q = _heads(module.q_proj(query), heads) * module.scaling  # P x H x K x d
    a = q @ module.k_proj.weight.view(heads, d, c)  # P x H x K x C  (q·b_k is constant per query)
    # scores laid out T x HK (the faster product here), softmax over T
    probs = torch.softmax(key @ a.reshape(p, heads * k_tok, c).transpose(1, 2), dim=-2)  # P x T x HK
    ctx = (probs.transpose(-1, -2) @ value).view(p, heads, k_tok, c)  # P x H x K x C
    out = ctx @ module.v_proj.weight.view(heads, d, c).transpose(1, 2) + module.v_proj.bias.view(heads, 1, d)
    return module.out_proj(out.transpose(1, 2).reshape(p, k_tok, heads * d))


def _image_to_tokens(
    module, residual: torch.Tensor, query, key: torch.Tensor, value: torch.Tensor, *, q_proj=None, terms: list | None = None
) -> torch.Tensor:
    """``residual + module(query=P x T x C image tokens, key/value=P x K x C tokens)``; ``q_proj``:
    shared T x D queries. ``residual``: P x T x C, or T x C shared by all prompts.

    Scores are laid out T x (K, H) so the softmax over the K tokens runs along a strided axis with
    the H heads contiguous (torch's softmax over a short last axis is an order of magnitude slower).
    The output bias rides on the K value vectors (each head's weights sum to one) and the residual
    is the product's accumulator, so the T x C output is written once. ``terms``: a list that
    receives ``(probs P x T x KH, mv P x KH x C)`` with ``output = residual + probs @ mv`` (small side only).
    """
    p, k_tok, c = key.shape
    if not _small_side(module, k_tok):
        return residual + _attention(module, query, key, value, q=q_proj, batch=p)
    heads = module.num_attention_heads
    d = module.internal_dim // heads
    kh = k_tok * heads
    k = _heads(module.k_proj(key), heads) * module.scaling  # P x H x K x d
    v = _heads(module.v_proj(value), heads)
    # the output projection moved onto the values: rows ordered (k, h)
    mv = (v @ module.out_proj.weight.view(c, heads, d).permute(1, 2, 0)).transpose(1, 2).reshape(p, kh, c)
    mv = mv + module.out_proj.bias / heads
    if q_proj is not None:
        # q·k per head as one product with a block-diagonal (K, H) x D matrix of the keys
        t = q_proj.shape[0]
        kb = k.new_zeros((p, k_tok, heads, heads, d))
        idx = torch.arange(heads, device=k.device)
        kb[:, :, idx, idx] = k.transpose(1, 2)
        scores = q_proj @ kb.reshape(p * kh, heads * d).t()  # T x (P, K, H)
        probs = torch.softmax(scores.view(t, p, k_tok, heads), dim=-2).view(t, p, kh)
        if terms is not None:
            terms[:] = [probs.transpose(0, 1), mv]
        if p == 1 and residual.dim() == 2:
            return torch.addmm(residual, probs[:, 0], mv[0])[None]
        return torch.baddbmm(residual, probs.transpose(0, 1), mv)
    t = query.shape[1]
    b = (k @ module.q_proj.weight.view(heads, d, c)).transpose(1, 2).reshape(p, kh, c)  # P x (K, H) x C
    bias = (k @ module.q_proj.bias.view(heads, d, 1)).transpose(1, 2).reshape(p, 1, kh)
    scores = torch.baddbmm(bias, query, b.transpose(1, 2))  # P x T x (K, H)
    probs = torch.softmax(scores.view(p, t, k_tok, heads), dim=-2).view(p, t, kh)
    if terms is not None:
        terms[:] = [probs, mv]
    return torch.baddbmm(residual, probs, mv)
