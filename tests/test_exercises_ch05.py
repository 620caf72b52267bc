"""Chapter 5 checkers: each accepts the reference and differently written correct
answers, says "not attempted" for a stub, and rejects wrong answers of several kinds
(units, rules at the borders, padding, scales, types and mutation) naming the case."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import (
    assert_reference_passes_and_stub_is_not_attempted,
    failed,
    on_meta,
    passes,
)

from lm_course.exercises import ch05_pretraining as ex

ALL_CHECKS = [
    (ex.check_bits_per_character, ex.solution_bits_per_character),
    (ex.check_bert_mask, ex.solution_bert_mask),
    (ex.check_masked_mean_pool, ex.solution_masked_mean_pool),
    (ex.check_lora_linear, ex.solution_lora_linear),
    (ex.check_adapter, ex.solution_adapter),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS[2:])
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


# ------------------------------------------------------------------ bits per character


def test_bpc_accepts_a_python_sum_and_log2_of_e() -> None:
    def python_sum(losses, n_chars):
        return math.fsum(losses.tolist()) / math.log(2) / n_chars

    def log2e(losses, n_chars):
        return (losses.double() * math.log2(math.e)).sum().item() / n_chars

    assert passes(ex.check_bits_per_character, python_sum)
    assert passes(ex.check_bits_per_character, log2e)


def test_bpc_rejects_per_token_units_nats_log2_and_tensors() -> None:
    check = ex.check_bits_per_character
    per_token = check(
        lambda losses, n: losses.double().mean().item() / math.log(2), verbose=False
    )
    assert failed(per_token, "6 characters", "expected 0.5")
    nats = check(lambda losses, n: losses.double().sum().item() / n, verbose=False)
    assert failed(nats, "3 characters", "expected 1")
    log2 = check(
        lambda losses, n: losses.double().log2().sum().item() / n, verbose=False
    )
    assert failed(log2, "3 characters")
    tensor = check(
        lambda losses, n: losses.double().sum() / math.log(2) / n, verbose=False
    )
    assert failed(tensor, "expected a Python float, got a tensor")


# ------------------------------------------------------------------ BERT masking


def test_bert_mask_accepts_a_written_out_loop_and_masked_fill() -> None:
    def masked_fill(ids, choose, split, random_ids, mask_id, special_ids, prob=0.15):
        special = (ids[..., None] == special_ids).any(-1)
        chosen = (choose < prob) & ~special
        targets = ids.masked_fill(~chosen, -100)
        inputs = ids.clone()
        inputs = inputs.masked_fill(chosen & (split < 0.8), mask_id)
        swap = chosen & (split >= 0.8) & (split < 0.9)
        inputs[swap] = random_ids[swap]
        return inputs, targets

    assert passes(ex.check_bert_mask, masked_fill)


def test_bert_mask_rejects_specials_wrong_order_borders_and_mutation() -> None:
    check = ex.check_bert_mask
    ref = ex.solution_bert_mask

    def specials_too(ids, choose, split, random_ids, mask_id, special_ids, prob=0.15):
        return ref(ids, choose, split, random_ids, mask_id, special_ids[:0], prob)

    assert failed(check(specials_too, verbose=False), "2 rows of 8")

    def reversed_split(ids, choose, split, random_ids, mask_id, special_ids, p=0.15):
        return ref(ids, choose, 1 - split, random_ids, mask_id, special_ids, p)

    assert failed(check(reversed_split, verbose=False), "2 rows of 8")

    def borders(ids, choose, split, random_ids, mask_id, special_ids, prob=0.15):
        nudged = torch.where(split == 0.8, split - 1e-3, split)
        return ref(ids, choose, nudged, random_ids, mask_id, special_ids, prob)

    assert failed(check(borders, verbose=False), "exactly on 0.8")

    def masked_target(ids, choose, split, random_ids, mask_id, special_ids, p=0.15):
        inputs, targets = ref(ids, choose, split, random_ids, mask_id, special_ids, p)
        return inputs, torch.where(targets != -100, inputs, targets)

    assert failed(check(masked_target, verbose=False), "2 rows of 8")

    def in_place(ids, choose, split, random_ids, mask_id, special_ids, prob=0.15):
        inputs, targets = ref(
            ids, choose, split, random_ids, mask_id, special_ids, prob
        )
        ids.copy_(inputs)
        return ids, targets

    assert failed(check(in_place, verbose=False), "changed")


# ------------------------------------------------------------------ pooling


def test_pool_accepts_nan_to_num_and_a_loop() -> None:
    def nan_safe(hidden, keep):
        weights = keep.unsqueeze(-1)
        total = torch.nan_to_num(hidden * weights, nan=0.0).sum(1)
        return total / keep.sum(1, keepdim=True).to(hidden.dtype)

    def loop(hidden, keep):
        return torch.stack([h[k].mean(0) for h, k in zip(hidden, keep)])

    assert passes(ex.check_masked_mean_pool, loop)
    assert passes(ex.check_masked_mean_pool, nan_safe)


def test_pool_rejects_plain_mean_product_padded_length_and_float32() -> None:
    check = ex.check_masked_mean_pool
    plain = check(lambda h, k: h.mean(1), verbose=False)
    assert failed(plain, "2 rows of 3 and 1")
    product = check(
        lambda h, k: (h * k.unsqueeze(-1)).sum(1) / k.sum(1, keepdim=True),
        verbose=False,
    )
    assert failed(product, "2 rows of 3 and 1")

    def padded_length(hidden, keep):
        return torch.where(keep.unsqueeze(-1), hidden, 0).sum(1) / hidden.shape[1]

    assert failed(check(padded_length, verbose=False), "2 rows of 3 and 1")

    def as_float32(hidden, keep):
        return ex.solution_masked_mean_pool(hidden.float(), keep)

    assert failed(check(as_float32, verbose=False), "float64")


# ------------------------------------------------------------------ LoRA


def test_lora_accepts_merging_the_weight_first_and_einsum() -> None:
    def merged(x, weight, bias, a, b, alpha):
        return x @ (weight + (alpha / a.shape[0]) * b @ a).T + bias

    def einsum(x, weight, bias, a, b, alpha):
        low = torch.einsum("...i,ri->...r", x, a)
        update = torch.einsum("...r,or->...o", low, b)
        return torch.einsum("...i,oi->...o", x, weight) + bias + alpha / len(a) * update

    assert passes(ex.check_lora_linear, merged)
    assert passes(ex.check_lora_linear, einsum)


def test_lora_rejects_wrong_scales_no_bias_and_f_linear() -> None:
    check = ex.check_lora_linear

    def scale_alpha(x, weight, bias, a, b, alpha):
        return x @ weight.T + bias + alpha * (x @ a.T) @ b.T

    # rank 1, alpha 2 cannot tell; rank 4 with alpha 4 can.
    assert failed(check(scale_alpha, verbose=False), "rank 4 with alpha 4")

    def no_scale(x, weight, bias, a, b, alpha):
        return x @ weight.T + bias + (x @ a.T) @ b.T

    assert failed(check(no_scale, verbose=False), "width 4 -> 3")

    def no_bias(x, weight, bias, a, b, alpha):
        return x @ weight.T + alpha / len(a) * (x @ a.T) @ b.T

    assert failed(check(no_bias, verbose=False), "width 4 -> 3")

    def with_linear(x, weight, bias, a, b, alpha):
        return F.linear(x, weight, bias) + alpha / len(a) * (x @ a.T) @ b.T

    assert failed(check(with_linear, verbose=False), "write the matrix products")


# ------------------------------------------------------------------ adapter


def test_adapter_accepts_f_linear_and_an_erf_gelu() -> None:
    def linear(h, w_down, b_down, w_up, b_up):
        return h + F.linear(F.gelu(F.linear(h, w_down, b_down)), w_up, b_up)

    def erf(h, w_down, b_down, w_up, b_up):
        z = h @ w_down.T + b_down
        return h + (0.5 * z * (1 + torch.erf(z / math.sqrt(2)))) @ w_up.T + b_up

    assert passes(ex.check_adapter, linear)
    assert passes(ex.check_adapter, erf)


def test_adapter_rejects_no_skip_relu_tanh_gelu_and_a_missing_bias() -> None:
    check = ex.check_adapter

    def no_skip(h, w_down, b_down, w_up, b_up):
        return F.gelu(h @ w_down.T + b_down) @ w_up.T + b_up

    assert failed(check(no_skip, verbose=False), "width 4, bottleneck 2")

    def relu(h, w_down, b_down, w_up, b_up):
        return h + F.relu(h @ w_down.T + b_down) @ w_up.T + b_up

    assert failed(check(relu, verbose=False), "width 4, bottleneck 2")

    def tanh_gelu(h, w_down, b_down, w_up, b_up):
        z = F.gelu(h @ w_down.T + b_down, approximate="tanh")
        return h + z @ w_up.T + b_up

    assert failed(check(tanh_gelu, verbose=False), "width 4, bottleneck 2")

    def no_up_bias(h, w_down, b_down, w_up, b_up):
        return h + F.gelu(h @ w_down.T + b_down) @ w_up.T

    assert failed(check(no_up_bias, verbose=False), "width 4, bottleneck 2")
