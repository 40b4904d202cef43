"""Export a SAM image encoder to ONNX (pixel_values 1x3xSxS -> image_embeddings), written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import torch


class _Encoder(torch.nn.Module):
    def __init__(self, vision_encoder: torch.nn.Module):
        super().__init__()
        self.vision_encoder = vision_encoder

    def forward(self, pixel_values):
        return self.vision_encoder(pixel_values)[0]


@contextlib.contextmanager
def plain_layers(vision_encoder: torch.nn.Module):
    """transformers' own ViT layers while exporting: vfm's rearranged layers (vfm/models/sam_encoder.py)
    loop over query and token chunks, which a trace unrolls into tens of thousands of nodes."""
    from vfm.models.sam_encoder import _CLASSES

    plain = {fast: base for base, fast in _CLASSES.items()}
    swapped = []
    for layer in getattr(vision_encoder, "layers", []):
        base = plain.get(type(layer))
        if base is not None:
            swapped.append((layer, type(layer)))
            layer.__class__ = base
    try:
        yield
    finally:
        for layer, cls in swapped:
            layer.__class__ = cls


def export_encoder(vision_encoder: torch.nn.Module, image_size: int, path: Path) -> Path:
    """``path`` (an .onnx file; weights inline under 2 GB, else beside it) unless it exists already.

    The TorchScript-based exporter is used: torch.export cannot trace transformers' SAM attention
    (a strided view of the windowed layers), the TorchScript exporter records it as it runs.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _Encoder(vision_encoder).eval().float()
    x = torch.zeros(1, 3, image_size, image_size)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), plain_layers(vision_encoder):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), tmp, input_names=["pixel_values"], output_names=["image_embeddings"],
                              dynamo=False, opset_version=17, do_constant_folding=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
