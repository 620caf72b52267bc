"""The named recipes: each builds a valid model and training config; the ``cpu`` one
uses Muon, and bfloat16 only where the CPU has bfloat16 instructions."""

from __future__ import annotations

import pytest

from lm_course import presets
from lm_course.models.gpt import GPTConfig
from lm_course.presets import PRESETS, get_preset
from lm_course.training import TrainConfig


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds(name: str) -> None:
    preset = get_preset(name)
    GPTConfig(vocab_size=65, **preset.model)
    TrainConfig(**preset.train)
    assert preset.batch_size >= 1


def test_the_reference_is_the_well_known_configuration() -> None:
    ref = get_preset("reference-cpu")
    assert ref.model == dict(
        block_size=64, n_layer=4, n_head=4, d_model=128, dropout=0.0
    )
    assert ref.batch_size == 12 and ref.train["max_steps"] == 2000
    assert "optimizer" not in ref.train  # AdamW, as the original


def test_the_cpu_recipe_trains_its_matrices_with_muon() -> None:
    train = get_preset("cpu").train
    assert train["optimizer"] == "muon" and train["muon_lr"] == 0.03
    assert train["precision"] == presets.cpu_precision()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu vme avx2 avx512f avx512_bf16 avx512_vnni", "bfloat16"),
        ("fpu avx2 amx_bf16 amx_tile", "bfloat16"),
        ("fpu vme avx2 avx512f avx512_vnni", "float32"),  # AVX-512 without BF16
        (None, "float32"),  # no /proc/cpuinfo: macOS, Windows
    ],
)
def test_bfloat16_only_with_bfloat16_instructions(
    tmp_path, monkeypatch, flags: str | None, expected: str
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(presets, "_CPUINFO", cpuinfo)
    presets.native_bf16_cpu.cache_clear()
    try:
        assert presets.cpu_precision() == expected
    finally:
        presets.native_bf16_cpu.cache_clear()
