"""Which number format LoRA training computes in: bfloat16 where the hardware does it
natively, float32 elsewhere.

On a CPU with AVX512-BF16 or AMX, autocast to bfloat16 trains several times faster than
float32; on one without (AVX2 only), bfloat16 is emulated and slower, so "auto" must look
at the processor rather than assume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["auto", "bf16", "fp32"]
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the processor computes bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: ask oneDNN instead
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def training_dtype(precision: Precision, device: str) -> torch.dtype:
    """The autocast dtype for ``precision`` on ``device``; "auto" picks bfloat16 only
    where it is native (a CUDA device that supports it, or such a CPU)."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return torch.float32


@contextlib.contextmanager
def autocast(dtype: torch.dtype, device: str) -> Iterator[None]:
    """Autocast the forward pass to ``dtype`` (nothing for float32). The weights and the
    optimiser stay in float32, so the adapter saved is the same format either way."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
        yield
