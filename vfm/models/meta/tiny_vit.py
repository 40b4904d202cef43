"""MobileSAM's image encoder: TinyViT as adapted for SAM (Zhang et al., 2023), under the checkpoint's own names.

transformers has no TinyViT, so vfm holds the encoder and hands its 256 x 64 x 64 embedding to
transformers' SAM prompt encoder + mask decoder (MobileSAM keeps SAM's decoder unchanged). The
layout, as ``mobile_sam.pt`` stores it (``image_encoder.`` prefix stripped):

- ``patch_embed.seq.0|2``: two 3x3 stride-2 Conv+BatchNorm (``.c`` / ``.bn``) with a GELU between: 1/4 scale.
- ``layers.0``: MBConv blocks (1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU), then a
  ``downsample`` PatchMerging (1x1, 3x3 depthwise stride s, 1x1).
- ``layers.1..3``: TinyViT blocks: windowed attention with a learned bias per (|dy|, |dx|) offset
  and head (``attn.attention_biases``, heads x window²; LayerNorm inside ``attn`` and ``mlp``), a
  depthwise ``local_conv``, an MLP; ``layers.1`` and ``layers.2`` end with a PatchMerging.
- The mergings use strides 2, 2, 1 (MobileSAM keeps the last stage at 1/16 scale: 64 x 64 for the
  1024 input), ``neck.0..3`` is SAM's neck (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d).
- ``norm_head`` / ``head`` (TinyViT's classifier) are in the file and unused.

Widths, depths, heads (rows of ``attention_biases``), windows (its columns = window²), MLP and
MBConv ratios and the local-conv kernel are read off the weights; the input size (1024) and the
merging strides are MobileSAM's.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 1024
MERGE_STRIDES = (2, 2, 1)


class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm, 'same' padding, stored as ``.c`` / ``.bn``."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1):
        super().__init__(OrderedDict(c=nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                                     bn=nn.BatchNorm2d(cout)))


class MBConv(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        return F.gelu(x + y)


class PatchMerging(nn.Module):
    """B x C x H x W (or tokens of a known grid) -> tokens of the next stage."""

    def __init__(self, dim: int, out: int, stride: int):
        super().__init__()
        self.conv1 = ConvBN(dim, out)
        self.conv2 = ConvBN(out, out, 3, stride, groups=out)
        self.conv3 = ConvBN(out, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        return x  # B x C x H' x W'


class WindowAttention(nn.Module):
    """Multi-head attention inside one window, with a learned bias per head and (|dy|, |dx|) offset."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)  # per head: q, k, v of dim // heads each
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        offsets = (ys[:, None] - ys[None]).abs() * window + (xs[:, None] - xs[None]).abs()
        self.register_buffer("bias_index", offsets, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.heads, 3, c // self.heads).permute(3, 0, 2, 1, 4)
        bias = self.attention_biases[:, self.bias_index].to(qkv.dtype)  # heads x n x n
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, mlp_hidden: int, local_kernel: int):
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, heads, window)
        self.local_conv = ConvBN(dim, dim, local_kernel, groups=dim)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x H x W x C."""
        b, h, w, c = x.shape
        s = self.window
        ph, pw = -h % s, -w % s
        y = F.pad(x, (0, 0, 0, pw, 0, ph))  # zero tokens: they attend (after the LayerNorm) like the original
        nh, nw = (h + ph) // s, (w + pw) // s
        y = y.view(b, nh, s, nw, s, c).transpose(2, 3).reshape(b * nh * nw, s * s, c)
        y = self.attn(y).view(b, nh, nw, s, s, c).transpose(2, 3).reshape(b, h + ph, w + pw, c)
        x = x + y[:, :h, :w]
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class Stage(nn.Module):
    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None, conv: bool):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W in and out."""
        if self.conv:
            for blk in self.blocks:
                x = blk(x)
        else:
            x = x.permute(0, 2, 3, 1)
            for blk in self.blocks:
                x = blk(x)
            x = x.permute(0, 3, 1, 2)
        return x if self.downsample is None else self.downsample(x)


class LayerNorm2d(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class TinyViTEncoder(nn.Module):
    """pixel_values (B x 3 x 1024 x 1024) -> ``(embeddings,)``, B x 256 x 64 x 64 (SamModel's vision-encoder contract)."""

    def __init__(self, arch: dict):
        super().__init__()
        dims = arch["dims"]
        self.patch_embed = nn.Module()
        self.patch_embed.seq = nn.Sequential(ConvBN(3, dims[0] // 2, 3, 2), nn.GELU(), ConvBN(dims[0] // 2, dims[0], 3, 2))
        stages = []
        for i, depth in enumerate(arch["depths"]):
            down = PatchMerging(dims[i], dims[i + 1], MERGE_STRIDES[i]) if i + 1 < len(dims) else None
            if i == 0:
                blocks = [MBConv(dims[0], arch["mbconv_hidden"]) for _ in range(depth)]
            else:
                blocks = [TinyViTBlock(dims[i], arch["heads"][i], arch["windows"][i], arch["mlp_hidden"][i], arch["local_kernel"])
                          for _ in range(depth)]
            stages.append(Stage(blocks, down, conv=i == 0))
        self.layers = nn.ModuleList(stages)
        out = arch["neck"]
        self.neck = nn.Sequential(nn.Conv2d(dims[-1], out, 1, bias=False), LayerNorm2d(out),
                                  nn.Conv2d(out, out, 3, padding=1, bias=False), LayerNorm2d(out))

    def forward(self, pixel_values: torch.Tensor, **_: object) -> tuple[torch.Tensor]:
        x = self.patch_embed.seq(pixel_values)
        for stage in self.layers:
            x = stage(x)
        return (self.neck(x),)


def _count(state: dict, pattern: str) -> int:
    found = {int(m[1]) for k in state if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def arch_from_state(state: dict) -> dict:
    """TinyViT hyper-parameters from its weights (keys without the ``image_encoder.`` prefix)."""
    n_stages = _count(state, r"^layers\.(\d+)\.")
    if n_stages != 4:
        raise ValueError(f"MobileSAM's TinyViT has 4 stages, this file has {n_stages}")
    dims = [int(state["patch_embed.seq.2.c.weight"].shape[0])]
    dims += [int(state[f"layers.{i}.blocks.0.attn.norm.weight"].shape[0]) for i in range(1, 4)]
    heads, windows, mlp_hidden = [0], [0], [0]
    for i in range(1, 4):
        bias = state[f"layers.{i}.blocks.0.attn.attention_biases"]
        heads.append(int(bias.shape[0]))
        window = math.isqrt(int(bias.shape[1]))
        if window * window != bias.shape[1]:
            raise ValueError(f"stage {i}'s attention bias has {bias.shape[1]} offsets, not a square window")
        windows.append(window)
        mlp_hidden.append(int(state[f"layers.{i}.blocks.0.mlp.fc1.weight"].shape[0]))
    return dict(
        dims=dims, depths=[_count(state, rf"^layers\.{i}\.blocks\.(\d+)\.") for i in range(4)], heads=heads,
        windows=windows, mlp_hidden=mlp_hidden, mbconv_hidden=int(state["layers.0.blocks.0.conv1.c.weight"].shape[0]),
        local_kernel=int(state["layers.1.blocks.0.local_conv.c.weight"].shape[-1]), neck=int(state["neck.0.weight"].shape[0]),
    )


def tiny_vit_from_state(state: dict) -> TinyViTEncoder:
    """The encoder with ``state`` (prefix stripped) loaded strictly, the classifier head left out."""
    state = {k: v for k, v in state.items() if not k.startswith(("norm_head.", "head."))}
    encoder = TinyViTEncoder(arch_from_state(state))
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()
