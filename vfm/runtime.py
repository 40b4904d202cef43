"""Where and how models run: device choice, numeric precision and CPU allocator tuning."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os

import torch

from vfm.errors import VfmError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU. "cuda" without a GPU is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise VfmError(f"unknown device '{device}'; use cpu, cuda, cuda:N, mps or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VfmError(f"device '{device}' requested but CUDA is not available here; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise VfmError(f"device '{device}' requested but MPS is not available here; use --device cpu")
    return dev


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            return cpuinfo_has_bf16(f.read())
    except OSError:
        return False


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a native bf16 flag (``avx512_bf16`` or ``amx_bf16``)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Map a user precision to the autocast dtype of the image encoder.

    "auto" is bf16 on CPUs with native bf16 and on CUDA GPUs that support it, fp32 elsewhere.
    """
    if precision not in PRECISIONS:
        raise VfmError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise VfmError("fp16 is not supported on CPU; use --precision bf16 or fp32")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def autocast(device: torch.device, dtype: torch.dtype):
    """An autocast context for ``dtype`` on ``device`` (a no-op for fp32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Keep large tensor buffers in glibc's heap instead of mmap/munmap on every allocation.

    PyTorch on CPU allocates and frees the same large activation buffers over and over; glibc
    serves each from a fresh mmap (page faults and zeroing every time) once it passes the dynamic
    mmap threshold. Raising the mmap/trim thresholds and the top pad at runtime (mallopt) keeps them
    in the heap. Set ``VFM_TUNE_MALLOC=0`` to leave the allocator alone. Returns True when applied.
    """
    if os.environ.get("VFM_TUNE_MALLOC", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    big = 1 << 30  # 1 GiB
    ok = mallopt(_M_MMAP_THRESHOLD, 512 << 20) == 1  # glibc caps the mmap threshold at 32 MiB on 64-bit... tried below
    if not ok:
        ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    ok = (mallopt(_M_TRIM_THRESHOLD, big) == 1) and ok
    ok = (mallopt(_M_TOP_PAD, 256 << 20) == 1) and ok
    return ok


#: Prompts in one segmentation call up to which the CPU decodes with one thread (a click).
SMALL_DECODE = 4


@contextlib.contextmanager
def small_work_threads(device: torch.device, prompts: int):
    """One torch thread for a click-sized decode on the CPU (``prompts`` <= SMALL_DECODE; env
    ``VFM_CLICK_THREADS`` sets the count), the previous count restored afterwards.

    A thread team costs more than it saves on work this small, and on a shared, busy CPU a team
    waits for its slowest thread: bench/click.py measured a click at p50 36 ms with one thread
    against 49 ms with two on an idle 2-core host, and 89 ms against 571 ms with two competing
    busy processes. Large batches (segment everything) keep every thread.
    """
    want = int(os.environ.get("VFM_CLICK_THREADS", "1") or 1)
    before = torch.get_num_threads()
    if device.type != "cpu" or prompts > SMALL_DECODE or want >= before:
        yield
        return
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(before)
