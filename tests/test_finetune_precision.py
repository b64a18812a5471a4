"""LoRA training's number format: bfloat16 only where the hardware computes it natively."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finetune.precision import autocast, cpu_has_native_bf16, training_dtype


def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    with_bf16 = tmp_path / "bf16"
    with_bf16.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    avx2_only = tmp_path / "avx2"
    avx2_only.write_text("flags\t\t: fpu sse2 avx2 fma\n")

    assert cpu_has_native_bf16(with_bf16)
    assert not cpu_has_native_bf16(avx2_only)


@pytest.mark.parametrize(
    ("precision", "expected"), [("fp32", torch.float32), ("bf16", torch.bfloat16)]
)
def test_an_explicit_precision_is_kept(precision: str, expected: torch.dtype) -> None:
    assert training_dtype(precision, "cpu") == expected  # type: ignore[arg-type]


def test_auto_follows_the_processor() -> None:
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert training_dtype("auto", "cpu") == expected


def test_autocast_computes_a_linear_layer_in_bfloat16_and_float32_leaves_it() -> None:
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with autocast(torch.bfloat16, "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with autocast(torch.float32, "cpu"):
        assert layer(x).dtype == torch.float32
    assert layer.weight.dtype == torch.float32  # weights (and so the saved adapter) unchanged
