"""Chapter 8 checkers: each accepts the reference and a differently written correct
answer, says "not attempted" for a stub, and rejects wrong answers of several kinds
with a message that names the case."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    last_case_only_raises,
    on_meta,
    passes,
)

from lm_course.compression import distillation_loss, quantize_per_channel
from lm_course.exercises import ch08_scale as ex
from lm_course.parallel import zero_memory
from lm_course.training.muon import newton_schulz

ALL_CHECKS = [
    (ex.check_quantize_int8, ex.solution_quantize_int8),
    (ex.check_prune_by_magnitude, ex.solution_prune_by_magnitude),
    (ex.check_distillation_loss, ex.solution_distillation_loss),
    (ex.check_newton_schulz, ex.solution_newton_schulz),
    (ex.check_zero_memory, ex.solution_zero_memory),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS[1:4])
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_a_partial_answer_fails_on_the_case_it_skips(check, solution) -> None:
    assert failed(check(last_case_only_raises(solution, 2), verbose=False), "raised")


def test_the_solutions_agree_with_the_package() -> None:
    w = torch.randn(30, 20)
    q = quantize_per_channel(w)
    values, scale = ex.solution_quantize_int8(w)
    assert torch.equal(values, q.values) and torch.equal(scale, q.scale)
    s, t = torch.randn(2, 5, 9), torch.randn(2, 5, 9)
    y = torch.randint(0, 9, (2, 5))
    torch.testing.assert_close(
        ex.solution_distillation_loss(s, t, y, 3.0, 0.4),
        distillation_loss(s, t, y, temperature=3.0, alpha=0.4),
    )
    g = torch.randn(24, 40)
    torch.testing.assert_close(ex.solution_newton_schulz(g, 5), newton_schulz(g, 5))
    for stage in range(4):
        assert (
            ex.solution_zero_memory(10**9, 8, stage)
            == zero_memory(10**9, 8, stage)["total"]
        )


# ------------------------------------------------------------------ quantize_int8


def test_quantize_accepts_multiplying_by_the_reciprocal() -> None:
    def by_reciprocal(w):
        top = w.abs().max(dim=1).values.float()
        inverse = torch.where(top > 0, 127 / top, torch.ones_like(top))
        values = (w.float() * inverse[:, None]).round().clamp(-127, 127)
        return values.to(torch.int8), torch.where(top > 0, top / 127, 1.0)

    assert passes(ex.check_quantize_int8, by_reciprocal)


def test_quantize_rejects_truncation_one_scale_per_matrix_and_128() -> None:
    def truncates(w):
        values, scale = ex.solution_quantize_int8(w)
        return (w.float() / scale[:, None]).to(torch.int8), scale

    def per_matrix(w):
        scale = (w.abs().max().float() / 127).expand(w.size(0)).clone()
        return torch.round(w.float() / scale[:, None]).to(torch.int8), scale

    def by_128(w):
        scale = w.abs().amax(dim=1).float() / 128
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return torch.round(w.float() / scale[:, None]).clamp(-128, 127).to(
            torch.int8
        ), scale

    def zero_row_nan(w):
        scale = w.abs().amax(dim=1).float() / 127
        return torch.round(w.float() / scale[:, None]).to(torch.int8), scale

    def keeps_float(w):
        values, scale = ex.solution_quantize_int8(w)
        return values.float(), scale

    def in_place(w):
        values, scale = ex.solution_quantize_int8(w)
        w.zero_()
        return values, scale

    assert failed(ex.check_quantize_int8(truncates, verbose=False), "w = [[0.9")
    assert failed(ex.check_quantize_int8(per_matrix, verbose=False), "w = [[0.9")
    assert failed(ex.check_quantize_int8(by_128, verbose=False), "w = [[0.9")
    assert failed(ex.check_quantize_int8(zero_row_nan, verbose=False), "row of zeros")
    assert failed(ex.check_quantize_int8(keeps_float, verbose=False), "dtype")
    assert failed(ex.check_quantize_int8(in_place, verbose=False), "in place")


# ------------------------------------------------------------------ prune_by_magnitude


def test_prune_accepts_a_threshold_from_kthvalue() -> None:
    def by_kthvalue(w, sparsity):
        k = round(sparsity * w.numel())
        if k == 0:
            return w.clone()
        magnitudes = w.abs().flatten()
        order = torch.argsort(magnitudes, stable=True)
        keep = torch.ones_like(magnitudes, dtype=torch.bool)
        keep[order[:k]] = False
        return torch.where(keep.view_as(w), w, torch.zeros_like(w))

    assert passes(ex.check_prune_by_magnitude, by_kthvalue)


def test_prune_rejects_signed_values_rows_quantiles_and_mutation() -> None:
    def signed(w, sparsity):
        k = round(sparsity * w.numel())
        out = w.clone()
        out.view(-1)[w.flatten().argsort()[:k]] = 0
        return out

    def per_row(w, sparsity):
        out = w.clone().reshape(w.size(0), -1)
        k = round(sparsity * out.size(1))
        idx = out.abs().argsort(dim=1)[:, :k]
        return out.scatter(1, idx, 0.0).view_as(w)

    def by_quantile(w, sparsity):
        threshold = torch.quantile(w.abs().double().flatten(), sparsity)
        return torch.where(w.abs() <= threshold, torch.zeros_like(w), w)

    def in_place(w, sparsity):
        w.copy_(ex.solution_prune_by_magnitude(w, sparsity))
        return w

    assert failed(ex.check_prune_by_magnitude(signed, verbose=False), "-3 is large")
    assert failed(
        ex.check_prune_by_magnitude(per_row, verbose=False), "half of them zero"
    )
    assert failed(ex.check_prune_by_magnitude(by_quantile, verbose=False), "sparsity 0")
    assert failed(ex.check_prune_by_magnitude(in_place, verbose=False), "in place")


# ------------------------------------------------------------------ distillation_loss


def test_distillation_accepts_the_library_kl_divergence() -> None:
    def with_kl_div(s, t, y, temperature, alpha):
        vocab = s.size(-1)
        soft = F.kl_div(
            F.log_softmax(s.reshape(-1, vocab) / temperature, -1),
            F.log_softmax(t.reshape(-1, vocab) / temperature, -1),
            reduction="batchmean",
            log_target=True,
        )
        hard = F.cross_entropy(s.reshape(-1, vocab), y.reshape(-1))
        return alpha * temperature**2 * soft + (1 - alpha) * hard

    assert passes(ex.check_distillation_loss, with_kl_div)


def test_distillation_rejects_a_reversed_kl_a_missing_t_squared_and_naive_exp() -> None:
    def reversed_kl(s, t, y, temperature, alpha):
        return ex.solution_distillation_loss(t, s, y, temperature, alpha) + (
            1 - alpha
        ) * (
            F.cross_entropy(s.reshape(-1, s.size(-1)), y.reshape(-1))
            - F.cross_entropy(t.reshape(-1, t.size(-1)), y.reshape(-1))
        )

    def no_t_squared(s, t, y, temperature, alpha):
        vocab = s.size(-1)
        log_s = F.log_softmax(s.reshape(-1, vocab) / temperature, -1)
        log_t = F.log_softmax(t.reshape(-1, vocab) / temperature, -1)
        kl = (log_t.exp() * (log_t - log_s)).sum(-1).mean()
        ce = F.cross_entropy(s.reshape(-1, vocab), y.reshape(-1))
        return alpha * kl + (1 - alpha) * ce

    def naive_exp(s, t, y, temperature, alpha):
        vocab = s.size(-1)
        p_s = torch.exp(s.reshape(-1, vocab) / temperature)
        p_s = p_s / p_s.sum(-1, keepdim=True)
        p_t = torch.exp(t.reshape(-1, vocab) / temperature)
        p_t = p_t / p_t.sum(-1, keepdim=True)
        kl = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()
        ce = F.cross_entropy(s.reshape(-1, vocab), y.reshape(-1))
        return alpha * temperature**2 * kl + (1 - alpha) * ce

    def returns_float(s, t, y, temperature, alpha):
        return ex.solution_distillation_loss(s, t, y, temperature, alpha).item()

    check = ex.check_distillation_loss
    assert failed(check(reversed_kl, verbose=False), "2 positions")
    assert failed(check(no_t_squared, verbose=False), "2 positions")
    assert failed(check(naive_exp, verbose=False), "hundreds")
    assert failed(check(returns_float, verbose=False), "expected a tensor")


# ------------------------------------------------------------------ newton_schulz


def test_newton_schulz_accepts_the_transposed_orientation() -> None:
    def on_the_small_side(g, steps):
        tall = g.size(0) > g.size(1)
        x = g.T if tall else g
        x = x / (x.norm() + 1e-7)
        for _ in range(steps):
            gram = x @ x.T
            x = 3.4445 * x + (-4.7750 * gram + 2.0315 * gram @ gram) @ x
        return x.T if tall else x

    assert passes(ex.check_newton_schulz, on_the_small_side)


def test_newton_schulz_rejects_no_normalisation_swapped_terms_and_an_svd() -> None:
    def unnormalised(g, steps):
        x = g
        for _ in range(steps):
            gram = x @ x.T
            x = 3.4445 * x + (-4.7750 * gram + 2.0315 * gram @ gram) @ x
        return x

    def swapped(g, steps):
        x = g / (g.norm() + 1e-7)
        for _ in range(steps):
            gram = x @ x.T
            x = 3.4445 * x + (2.0315 * gram - 4.7750 * gram @ gram) @ x
        return x

    def exact_svd(g, steps):
        u, _, vh = torch.linalg.svd(g, full_matrices=False)
        return u @ vh

    def by_largest_entry(g, steps):
        x = g / g.abs().max()  # singular values may then exceed 1
        for _ in range(steps):
            gram = x @ x.T
            x = 3.4445 * x + (-4.7750 * gram + 2.0315 * gram @ gram) @ x
        return x

    check = ex.check_newton_schulz
    assert failed(check(unnormalised, verbose=False), "[[2., 1.]")
    assert failed(check(swapped, verbose=False), "[[2., 1.]")
    assert failed(check(exact_svd, verbose=False), "[[2., 1.]")
    assert failed(check(by_largest_entry, verbose=False), "[[2., 1.]")


# ------------------------------------------------------------------ zero_memory


def test_zero_memory_accepts_a_table_of_sharded_parts() -> None:
    def by_table(n_params, n_devices, stage):
        parts = {"weights": (2, 3), "gradients": (2, 2), "optimizer": (12, 1)}
        return float(
            sum(
                n_params * size / (n_devices if stage >= first else 1)
                for size, first in parts.values()
            )
        )

    assert passes(ex.check_zero_memory, by_table)


def test_zero_memory_rejects_wrong_sharding_an_int_and_fp32_weights() -> None:
    def all_at_stage_one(n_params, n_devices, stage):
        return 16.0 * n_params / (n_devices if stage >= 1 else 1)

    def returns_int(n_params, n_devices, stage):
        return int(ex.solution_zero_memory(n_params, n_devices, stage))

    def fp32_weights(n_params, n_devices, stage):
        return ex.solution_zero_memory(n_params, n_devices, stage) * 20 / 16

    def shards_weights_first(n_params, n_devices, stage):
        weights = 2.0 * n_params / (n_devices if stage >= 1 else 1)
        return weights + 14.0 * n_params / (n_devices if stage >= 3 else 1)

    check = ex.check_zero_memory
    assert failed(check(all_at_stage_one, verbose=False), "stage 1")
    assert failed(check(returns_int, verbose=False), "expected a Python float")
    assert failed(check(fp32_weights, verbose=False), "stage 0")
    assert failed(check(shards_weights_first, verbose=False), "stage 1")
