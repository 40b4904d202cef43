"""Engines for the SAM image encoder: torch (default), ONNX Runtime, OpenVINO, and ``auto``.

    seg = Segmenter.load("sam-vit-base", backend="openvino")                 # fp32, same masks
    seg = Segmenter.load("sam-vit-base", backend="onnxruntime", precision="int8")  # dynamic int8

The encoder is exported once per checkpoint (ONNX, TorchScript exporter) into vfm's cache dir,
keyed by a hash of the encoder's weights, so a changed checkpoint is exported again; ONNX Runtime
runs it with every graph optimization, OpenVINO reads the same ONNX file. The prompt encoder and
mask decoder stay in torch (they are fast). ``auto`` times each installed engine once on this CPU
and checkpoint (fp32, the real input size) and keeps the fastest; the choice is cached.
"""

from __future__ import annotations

from vfm.errors import PromptError

BACKENDS = ("torch", "onnxruntime", "openvino", "auto")
#: vfm families whose image encoder the exported backends run (one image_embeddings output)
EXPORTABLE_FAMILIES = ("sam",)


def check_backend(backend: str | None, precision: str) -> str:
    backend = backend or "torch"
    if backend not in BACKENDS:
        raise PromptError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if precision == "int8" and backend == "torch":
        raise PromptError("--precision int8 needs --backend onnxruntime or openvino (an int8 encoder export)")
    return backend
