"""The exported encoder in ONNX Runtime (CPU): every graph optimization, the same threads as torch;
``int8``: dynamic quantization of the weights (onnxruntime.quantization.quantize_dynamic, QInt8),
as X-AnyLabeling ships its SAM encoders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vfm.errors import require


def quantized(onnx_path: Path) -> Path:
    out = onnx_path.with_name(onnx_path.stem + ".int8.onnx")
    if not out.is_file():
        require("onnxruntime", "onnxruntime")
        from onnxruntime.quantization import QuantType, quantize_dynamic

        import logging

        tmp = out.with_suffix(".tmp.onnx")
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its per-tensor "cannot quantize" warnings go to the root logger
        try:
            quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        os.replace(tmp, out)
    return out


class OrtEncoder:
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int | None = None, int8: bool = False):
        ort = require("onnxruntime", "onnxruntime")
        path = quantized(onnx_path) if int8 else onnx_path
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.precision = "int8" if int8 else "fp32"

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(pixel_values.detach().float().cpu().numpy())
        return torch.from_numpy(self.session.run(["image_embeddings"], {"pixel_values": x})[0])
