"""The exported encoder in OpenVINO (CPU): the same ONNX file, compiled for latency with the same
threads as torch and fp32 inference precision (OpenVINO would otherwise pick bf16 on CPUs that have
it); ``int8``: NNCF weight compression (8-bit asymmetric weights), saved beside the ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vfm.errors import require


class OvEncoder:
    name = "openvino"

    def __init__(self, onnx_path: Path, threads: int | None = None, int8: bool = False):
        ov = require("openvino", "openvino")
        core = ov.Core()
        if int8:
            xml = onnx_path.with_name(onnx_path.stem + ".int8.xml")
            if not xml.is_file():
                import logging

                nncf = require("nncf", "openvino")
                nncf.set_log_level(logging.ERROR)
                compressed = nncf.compress_weights(core.read_model(str(onnx_path)))  # INT8_ASYM by default
                ov.save_model(compressed, str(xml))
            model = core.read_model(str(xml))
        else:
            model = core.read_model(str(onnx_path))
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
                  "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.precision = "int8" if int8 else "fp32"

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(pixel_values.detach().float().cpu().numpy())
        out = self.request.infer({0: x})
        return torch.from_numpy(np.array(next(iter(out.values()))))
