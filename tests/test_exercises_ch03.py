"""Chapter 3 checkers: accept the reference, say "not attempted" for a stub, and reject
the mistakes readers really make, with a message that points at the case."""

from __future__ import annotations

import math

import pytest
import torch
from exercise_helpers import assert_reference_passes_and_stub_is_not_attempted, failed

from lm_course.exercises import ch03_lstm as ex
from lm_course.models.lstm import LSTMConfig, LSTMLanguageModel

ALL_CHECKS = [
    (ex.check_perplexity, ex.solution_perplexity),
    (ex.check_lstm_cell_step, ex.solution_lstm_cell_step),
    (ex.check_gru_cell_step, ex.solution_gru_cell_step),
    (ex.check_clip_grad_global_norm, ex.solution_clip_grad_global_norm),
    (ex.check_tbptt_train, ex.solution_tbptt_train),
]


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS)
def test_reference_passes_and_stub_is_not_attempted(check, solution, capsys) -> None:
    assert_reference_passes_and_stub_is_not_attempted(check, solution, capsys)


# ------------------------------------------------------------------ perplexity


def test_perplexity_accepts_a_one_element_tensor() -> None:
    assert ex.check_perplexity(lambda losses: losses.mean().exp(), verbose=False).passed


def test_perplexity_rejects_mean_of_exp_and_base_2() -> None:
    mean_of_exp = ex.check_perplexity(
        lambda losses: losses.exp().mean().item(), verbose=False
    )
    assert failed(mean_of_exp, "[1., 2., 3.]", "expected 7.38906")
    base_2 = ex.check_perplexity(
        lambda losses: 2 ** losses.mean().item(), verbose=False
    )
    assert failed(base_2, "ln(65)", "expected 65")
    summed = ex.check_perplexity(
        lambda losses: losses.sum().exp().item(), verbose=False
    )
    assert failed(summed, "ln(65)")


def test_perplexity_of_a_uniform_guess_is_the_vocabulary_size() -> None:
    assert ex.solution_perplexity(torch.full((7,), math.log(65.0))) == pytest.approx(
        65.0
    )


# ------------------------------------------------------------------ LSTM cell


def test_lstm_reference_matches_torch_lstm_cell() -> None:
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(4, 6)
    x, h, c = torch.randn(3, 4), torch.randn(3, 6), torch.randn(3, 6)
    expected_h, expected_c = cell(x, (h, c))
    with torch.no_grad():
        got_h, got_c = ex.solution_lstm_cell_step(
            x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
        )
    torch.testing.assert_close(got_h, expected_h)
    torch.testing.assert_close(got_c, expected_c)


def test_lstm_rejects_wrong_gate_order_and_missing_tanh() -> None:
    def ifog(x, h, c, w_ih, w_hh, b_ih, b_hh):  # the order of the original LSTM papers
        pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, o, g = pre.chunk(4, dim=1)
        c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c_new.tanh(), c_new

    assert failed(
        ex.check_lstm_cell_step(ifog, verbose=False),
        "batch 1, input 2, hidden 1",
        "item 0",
        "values differ",
    )

    def no_tanh_on_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
        pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = pre.chunk(4, dim=1)
        c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c_new, c_new

    assert failed(ex.check_lstm_cell_step(no_tanh_on_cell, verbose=False), "item 0")

    def returns_c_first(*args):
        h_new, c_new = ex.solution_lstm_cell_step(*args)
        return c_new, h_new

    assert failed(ex.check_lstm_cell_step(returns_c_first, verbose=False), "item 0")


# ------------------------------------------------------------------ GRU cell


def test_gru_reference_matches_torch_gru_cell() -> None:
    torch.manual_seed(1)
    cell = torch.nn.GRUCell(5, 4)
    x, h = torch.randn(2, 5), torch.randn(2, 4)
    with torch.no_grad():
        got = ex.solution_gru_cell_step(
            x, h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
        )
        torch.testing.assert_close(got, cell(x, h))


def test_gru_rejects_swapped_update_and_reset_outside_the_bias() -> None:
    def swapped_z(x, h, w_ih, w_hh, b_ih, b_hh):
        i_r, i_z, i_n = (x @ w_ih.T + b_ih).chunk(3, dim=1)
        h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=1)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        n = (i_n + r * h_n).tanh()
        return z * n + (1 - z) * h

    assert failed(
        ex.check_gru_cell_step(swapped_z, verbose=False), "batch 1", "values differ"
    )

    def reset_before_bias(x, h, w_ih, w_hh, b_ih, b_hh):
        hidden = h.shape[1]
        i_r, i_z, i_n = (x @ w_ih.T + b_ih).chunk(3, dim=1)
        h_r, h_z, _ = (h @ w_hh.T + b_hh).chunk(3, dim=1)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        # r multiplies W_hn h only, with b_hn added outside (the paper's variant)
        n = (i_n + r * (h @ w_hh[2 * hidden :].T) + b_hh[2 * hidden :]).tanh()
        return (1 - z) * n + z * h

    assert failed(
        ex.check_gru_cell_step(reset_before_bias, verbose=False), "values differ"
    )


# ------------------------------------------------------------------ gradient clipping


def test_clip_reference_matches_torch_clip_grad_norm() -> None:
    torch.manual_seed(2)
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    for p in params:
        p.grad = torch.randn_like(p)
    clipped = ex.solution_clip_grad_global_norm([p.grad for p in params], 0.7)
    torch.nn.utils.clip_grad_norm_(params, 0.7)
    for got, p in zip(clipped, params):
        torch.testing.assert_close(got, p.grad)


def test_clip_rejects_per_tensor_clipping_and_scaling_up() -> None:
    def per_tensor(grads, max_norm):
        return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]

    assert failed(
        ex.check_clip_grad_global_norm(per_tensor, verbose=False),
        "each of norm 0.8",
        "values differ",
    )

    def always_rescale(grads, max_norm):
        total = torch.sqrt(sum((g**2).sum() for g in grads))
        return [g * max_norm / total for g in grads]

    assert failed(
        ex.check_clip_grad_global_norm(always_rescale, verbose=False), "nothing to clip"
    )


# ------------------------------------------------------------------ TBPTT


def test_tbptt_rejects_a_missing_detach_and_a_reset_state() -> None:
    def no_detach(model, stream, seq_len, optimizer):
        losses, state = [], None
        for start in range(0, stream.shape[1] - seq_len, seq_len):
            x, y = (
                stream[:, start : start + seq_len],
                stream[:, start + 1 : start + seq_len + 1],
            )
            _, loss, state = model(x, y, state)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    assert failed(
        ex.check_tbptt_train(no_detach, verbose=False),
        "raised RuntimeError",
        "detach the state",
    )

    def reset_every_chunk(model, stream, seq_len, optimizer):
        losses = []
        for start in range(0, stream.shape[1] - seq_len, seq_len):
            x, y = (
                stream[:, start : start + seq_len],
                stream[:, start + 1 : start + seq_len + 1],
            )
            _, loss, _ = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    assert failed(ex.check_tbptt_train(reset_every_chunk, verbose=False), "item 1")

    def overlapping_windows(model, stream, seq_len, optimizer):
        losses, state = [], None
        for start in range(0, stream.shape[1] - seq_len):
            x, y = (
                stream[:, start : start + seq_len],
                stream[:, start + 1 : start + seq_len + 1],
            )
            _, loss, state = model(x, y, state)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state = model.detach_state(state)
            losses.append(loss.item())
        return losses

    assert failed(
        ex.check_tbptt_train(overlapping_windows, verbose=False), "expected 3 items"
    )


def test_tbptt_checker_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_tbptt_train(ex.solution_tbptt_train, verbose=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_tbptt_reference_carries_the_state() -> None:
    """The reference's first chunk equals a fresh forward; later chunks see earlier text."""
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=5, d_embed=4, d_hidden=8))
    stream = torch.randint(0, 5, (2, 13), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model(stream[:, :4], stream[:, 1:5])[1].item()
    losses = ex.solution_tbptt_train(
        model, stream, 4, torch.optim.SGD(model.parameters(), lr=0.0)
    )
    assert len(losses) == 3 and losses[0] == pytest.approx(first)
