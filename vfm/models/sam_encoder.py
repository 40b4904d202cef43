"""SAM's ViT image encoder layers (transformers ``SamVisionLayer`` / ``SamHQVisionLayer``), rearranged.

Same weights, same arithmetic, less memory traffic. Profiling transformers' fp32 encoder on a CPU
(SAM ViT-B, 1024²) shows about half of the time outside the matrix products, almost all of it in the
four global-attention layers: each materialises the decomposed relative-position bias for all
query/key pairs (heads x 4096 x 4096 floats, 805 MB for ViT-B), first as a broadcast sum laid out
like its inputs and then as a contiguous copy, before SDPA reads it back. Here:

- **global attention** runs in chunks of queries: the bias of one chunk (a few MB, reused from the
  allocator's heap, cache-resident) is written once, contiguous, and SDPA consumes it. Each query's
  arithmetic is unchanged (the chunking alone is bit-exact);
- **windowed attention** computes q/k/v and the output projection only for the real tokens: the
  zero padding that fills the last windows (64 → 70 tokens per side for 14-token windows) projects
  to the q/k/v bias, which is what the padded positions get, and their outputs were discarded
  anyway. The bias of the windows is built a few windows at a time;
- q, k and v come from three products with the thirds of the fused qkv weight (no 3C-wide buffer
  to permute), and the MLP runs over chunks of tokens. These round differently from the fused
  products: embeddings agree to ~1e-5 (``tests/test_sam_encoder.py``).

:func:`accelerate` swaps the layers' class in place (parameters untouched); ``VFM_FAST_ENCODER=0``
leaves transformers' forward alone.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

# Working buffers are kept under glibc's largest mmap threshold (32 MiB): bigger ones are mmapped
# fresh on every allocation and page-faulted in again (tens of ms per 50 MB buffer on a CPU).
BIAS_CHUNK_BYTES = 24 << 20  # relative-position bias of one chunk of queries
MLP_CHUNK_BYTES = 16 << 20  # MLP hidden activations of one chunk of tokens


def accelerate(model: torch.nn.Module) -> int:
    """Use the rearranged forward for every ViT layer of ``model``'s vision encoder; returns how many."""
    if os.environ.get("VFM_FAST_ENCODER", "1") == "0":
        return 0
    encoder = getattr(model, "vision_encoder", None)
    layers = getattr(encoder, "layers", None)
    if layers is None:
        return 0
    n = 0
    for layer in layers:
        if not _is_sam_vit_layer(layer):
            continue
        layer.__class__ = _fast_class(type(layer))
        n += 1
    return n


def _is_sam_vit_layer(layer: torch.nn.Module) -> bool:
    attn = getattr(layer, "attn", None)
    return (
        hasattr(layer, "window_size")
        and all(hasattr(layer, a) for a in ("layer_norm1", "layer_norm2", "mlp"))
        and attn is not None
        and all(hasattr(attn, a) for a in ("qkv", "proj", "num_attention_heads", "use_rel_pos"))
    )


_CLASSES: dict[type, type] = {}


def _fast_class(cls: type) -> type:
    if getattr(cls, "_vfm_fast", False):
        return cls
    if cls not in _CLASSES:
        _CLASSES[cls] = type(cls.__name__, (cls,), {"forward": _layer_forward, "_vfm_fast": True,
                                                     "__module__": __name__})
    return _CLASSES[cls]


def _layer_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    residual = hidden_states
    x = self.layer_norm1(hidden_states)
    if self.window_size > 0:
        x = windowed_attention(self.attn, x, self.window_size)
    else:
        x = global_attention(self.attn, x)
    hidden_states = residual + x
    # the MLP is per token: run it over chunks of tokens so its wide hidden layer stays small
    width = getattr(getattr(self.mlp, "lin1", None), "out_features", None)
    flat = hidden_states.reshape(-1, hidden_states.shape[-1])
    rows = max(1, MLP_CHUNK_BYTES // (width * flat.element_size())) if width else len(flat)
    if rows >= len(flat):
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))
    out = torch.empty_like(flat)
    for i in range(0, len(flat), rows):
        chunk = flat[i : i + rows]
        torch.add(chunk, self.mlp(self.layer_norm2(chunk)), out=out[i : i + rows])
    return out.view_as(hidden_states)


# ---------------------------------------------------------------------- attention
def _qkv(attn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fused qkv projection as three products (B x h x w x C each)."""
    weights = attn.qkv.weight.chunk(3)
    biases = attn.qkv.bias.chunk(3) if attn.qkv.bias is not None else [None] * 3
    return tuple(F.linear(x, wt, bs) for wt, bs in zip(weights, biases))


def _rel_pos_terms(attn, q: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decomposed relative-position terms of queries ``q`` (N x h*w x d): N x h*w x h and N x h*w x w."""
    n, _, d = q.shape
    rh = attn.get_rel_pos(h, h, attn.rel_pos_h)
    rw = attn.get_rel_pos(w, w, attn.rel_pos_w)
    qr = q.reshape(n, h, w, d)
    rel_h = torch.einsum("bhwc,hkc->bhwk", qr, rh).reshape(n, h * w, h)
    rel_w = torch.einsum("bhwc,wkc->bhwk", qr, rw).reshape(n, h * w, w)
    return rel_h, rel_w


def global_attention(attn, x: torch.Tensor) -> torch.Tensor:
    """``attn`` (SamVisionSdpaAttention, no windows) on B x h x w x C, queries in chunks."""
    b, h, w, c = x.shape
    nh = attn.num_attention_heads
    t = h * w
    d = c // nh
    # q, k and v by three products (each a third of the fused qkv output, heads as strided views)
    q4, k4, v4 = (z.view(b, t, nh, d).transpose(1, 2) for z in _qkv(attn, x))
    q = q4.reshape(b * nh, t, d)
    if not attn.use_rel_pos:
        out = F.scaled_dot_product_attention(q4, k4, v4)
    else:
        rel_h, rel_w = _rel_pos_terms(attn, q, h, w)
        rel_h, rel_w = rel_h.view(b, nh, t, h, 1), rel_w.view(b, nh, t, 1, w)
        out = torch.empty_like(q4)
        step = max(1, BIAS_CHUNK_BYTES // (b * nh * t * q.element_size()))
        step = step // 64 * 64 or step  # whole blocks for the flash kernel
        for i in range(0, t, step):
            j = min(i + step, t)
            bias = torch.add(rel_h[:, :, i:j], rel_w[:, :, i:j]).view(b, nh, j - i, t)
            out[:, :, i:j] = F.scaled_dot_product_attention(q4[:, :, i:j], k4, v4, attn_mask=bias)
    out = out.view(b, nh, h, w, d).permute(0, 2, 3, 1, 4).reshape(b, h, w, c)
    return attn.proj(out)


def windowed_attention(attn, x: torch.Tensor, ws: int) -> torch.Tensor:
    """Window partition + ``attn`` + unpartition of transformers' SamVisionLayer, on B x h x w x C."""
    b, h, w, c = x.shape
    nh = attn.num_attention_heads
    d = c // nh
    ph, pw = -h % ws, -w % ws
    hp, wp = h + ph, w + pw
    nwy, nwx = hp // ws, wp // ws
    n = b * nwy * nwx
    fills = attn.qkv.bias.chunk(3) if attn.qkv.bias is not None else [None] * 3

    def windows(z: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
        """B x h x w x C projections of the real tokens -> windows N x nh x ws² x d."""
        if ph or pw:  # zero-padded tokens project to the bias (zeros without one)
            padded = (fill if fill is not None else z.new_zeros(c)).expand(b, hp, wp, c).clone()
            padded[:, :h, :w] = z
            z = padded
        z = z.view(b, nwy, ws, nwx, ws, nh, d).permute(0, 1, 3, 5, 2, 4, 6)  # B nwy nwx nh ws ws d
        return z.reshape(n, nh, ws * ws, d)

    q, k, v = (windows(z, f) for z, f in zip(_qkv(attn, x), fills))
    out = torch.empty_like(q)
    if attn.use_rel_pos:
        rel_h, rel_w = _rel_pos_terms(attn, q.reshape(n * nh, ws * ws, d), ws, ws)
        rel_h = rel_h.view(n, nh, ws * ws, ws, 1)
        rel_w = rel_w.view(n, nh, ws * ws, 1, ws)
        step = max(1, BIAS_CHUNK_BYTES // (nh * (ws * ws) ** 2 * q.element_size()))
        for i in range(0, n, step):
            j = min(i + step, n)
            bias = torch.add(rel_h[i:j], rel_w[i:j]).view(j - i, nh, ws * ws, ws * ws)
            out[i:j] = F.scaled_dot_product_attention(q[i:j], k[i:j], v[i:j], attn_mask=bias)
    else:
        out = F.scaled_dot_product_attention(q, k, v)
    # windows back to the image, padding dropped, then the output projection on real tokens
    out = out.view(b, nwy, nwx, nh, ws, ws, d).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, hp, wp, c)
    if ph or pw:
        out = out[:, :h, :w]
    return attn.proj(out)
