"""Device and precision choice: the fast encoder precision is the default only where it is native."""

from __future__ import annotations

import ctypes.util
import os

import pytest
import torch

from vfm import runtime
from vfm.errors import VfmError

ZEN2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c\nbugs\t\t: sysret_ss_attrs\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: avx512f amx_bf16 amx_tile amx_int8\n"


def test_cpuinfo_bf16_flags():
    assert not runtime.cpuinfo_has_bf16(ZEN2)
    assert runtime.cpuinfo_has_bf16(ZEN4)
    assert runtime.cpuinfo_has_bf16(SAPPHIRE)
    assert not runtime.cpuinfo_has_bf16("")
    # a flag name inside another line (or a longer flag) is not the flag
    assert not runtime.cpuinfo_has_bf16("model name\t: avx512_bf16 emulator\nflags\t\t: avx2 avx512_bf16x\n")


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_precision_on_cpu_is_bf16_only_where_native(monkeypatch, native, expected):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: native)
    assert runtime.resolve_precision("auto", torch.device("cpu")) == expected
    # explicit choices are kept whatever the CPU
    assert runtime.resolve_precision("fp32", torch.device("cpu")) == torch.float32
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16


def test_precision_errors():
    with pytest.raises(VfmError, match="fp16 is not supported on CPU"):
        runtime.resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(VfmError, match="unknown precision 'int4'"):
        runtime.resolve_precision("int4", torch.device("cpu"))


def test_device_choice():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.resolve_device(None).type == expected
    assert runtime.resolve_device("auto").type == expected
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(VfmError, match="unknown device 'tpu9'"):
        runtime.resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(VfmError, match="CUDA is not available"):
            runtime.resolve_device("cuda:0")


def test_allocator_tuning_can_be_turned_off(monkeypatch):
    tune = runtime.tune_allocator.__wrapped__  # uncached
    monkeypatch.setenv("VFM_TUNE_MALLOC", "0")
    assert tune() is False
    monkeypatch.setenv("VFM_TUNE_MALLOC", "1")
    if ctypes.util.find_library("c") and "glibc" in (os.confstr("CS_GNU_LIBC_VERSION") or ""):
        assert tune() is True
