"""Attach an exported encoder to a loaded SAM adapter: ``--backend onnxruntime|openvino|auto``."""

from __future__ import annotations

import json
import platform
import sys
import time

import torch

from vfm.errors import PromptError
from vfm.models.backends import EXPORTABLE_FAMILIES
from vfm.models.backends.cache import export_dir, weights_key
from vfm.models.backends.export import export_encoder

ENGINES = ("torch", "onnxruntime", "openvino")


def _installed(engine: str) -> bool:
    import importlib.util

    return engine == "torch" or importlib.util.find_spec(engine) is not None


def _engine(name: str, onnx, threads: int, int8: bool):
    if name == "onnxruntime":
        from vfm.models.backends.onnxruntime import OrtEncoder

        return OrtEncoder(onnx, threads, int8)
    from vfm.models.backends.openvino import OvEncoder

    return OvEncoder(onnx, threads, int8)


def attach(adapter, backend: str, precision: str, log=None) -> str:  # noqa: C901
    """Set ``adapter.external_encoder`` for ``backend`` (exporting the encoder once); returns the engine used."""
    int8 = precision == "int8"
    if backend == "torch":
        return "torch"
    if adapter.family not in EXPORTABLE_FAMILIES:
        raise PromptError(f"--backend {backend} runs SAM / SlimSAM image encoders; '{adapter.name}' is {adapter.family}: "
                          "use --backend torch")
    if adapter.device.type != "cpu":
        raise PromptError(f"--backend {backend} runs on the CPU; on {adapter.device.type} use --backend torch")
    if backend != "auto" and not _installed(backend):
        from vfm.errors import require

        require(backend, backend)
    size = adapter.prep.image_size
    vision = adapter.model.vision_encoder
    directory = export_dir(weights_key(vision, size))
    onnx = directory / "encoder.onnx"
    if not onnx.is_file():
        _say(log, f"exporting {adapter.name}'s image encoder to ONNX once (cached in {directory})")
        export_encoder(vision, size, onnx)
    threads = torch.get_num_threads()
    if backend == "auto":
        backend = _fastest(adapter, onnx, directory, threads, precision, log)
        if backend == "torch":
            return "torch"
    adapter.external_encoder = _engine(backend, onnx, threads, int8)
    adapter.encoder_dtype = torch.float32  # no autocast around an external engine
    return backend


def _fastest(adapter, onnx, directory, threads: int, precision: str, log) -> str:
    """Each installed engine timed on this CPU (one warm-up, then the best of 2 calls), cached per
    checkpoint, CPU, thread count and precision."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    record = directory / "auto.json"
    int8 = precision == "int8"
    tag = f"{cpu}|{threads}|{precision}"  # torch runs at the requested precision (auto: bf16 where native)
    known = json.loads(record.read_text()) if record.is_file() else {}
    if tag in known:
        return known[tag]["choice"]
    size = adapter.prep.image_size
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    times = {}
    for engine in ENGINES:
        if not _installed(engine) or (engine == "torch" and int8):
            continue
        if engine == "torch":
            def run():  # vfm's own path at the requested precision (bf16 autocast where "auto" chose it)
                from vfm.runtime import autocast

                with torch.inference_mode(), autocast(adapter.device, adapter.encoder_dtype):
                    adapter.model.get_image_embeddings(x)
        else:
            encoder = _engine(engine, onnx, threads, int8)

            def run(encoder=encoder):
                encoder(x)
        run()
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t)
        times[engine] = best
    choice = min(times, key=times.get)
    known[tag] = {"choice": choice, "seconds": {k: round(v, 4) for k, v in times.items()}}
    record.write_text(json.dumps(known, indent=1))
    _say(log, "backend auto on this CPU: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
         + f" per encoder call; using {choice} (cached in {record})")
    return choice


def _say(log, text: str) -> None:
    stream = log if log is not None else sys.stderr
    stream.write(f"vfm: {text}\n")
    stream.flush()
