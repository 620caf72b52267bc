"""Chapter 3 checkers: each accepts the reference and differently written correct
answers, says "not attempted" for a stub, and rejects wrong answers of several kinds
(too-tidy inputs, built-ins, type and mutation, reporting) with a message that names
the case."""

from __future__ import annotations

import math

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


@pytest.mark.parametrize(("check", "solution"), ALL_CHECKS[1:4])
def test_an_answer_on_another_device_is_reported(check, solution) -> None:
    assert failed(check(on_meta(solution), verbose=False), "got one on meta")


# ------------------------------------------------------------------ perplexity


def test_perplexity_of_a_uniform_guess_is_the_vocabulary_size() -> None:
    uniform = torch.full((7,), math.log(65.0))
    assert ex.solution_perplexity(uniform) == pytest.approx(65.0)


def test_perplexity_accepts_item_math_exp_and_a_python_sum() -> None:
    assert passes(ex.check_perplexity, lambda losses: losses.mean().exp().item())
    assert passes(ex.check_perplexity, lambda losses: math.exp(losses.mean()))
    assert passes(
        ex.check_perplexity, lambda losses: math.exp(sum(losses.tolist()) / len(losses))
    )


def test_perplexity_rejects_mean_of_exp_base_2_and_a_product() -> None:
    check = ex.check_perplexity
    mean_of_exp = check(lambda losses: losses.exp().mean().item(), verbose=False)
    assert failed(mean_of_exp, "[1., 2., 3.]", "expected 7.389056")
    base_2 = check(lambda losses: 2 ** losses.mean().item(), verbose=False)
    assert failed(base_2, "ln(65)", "expected 65")

    def product(losses):  # the probabilities' product underflows on long texts
        return (torch.exp(-losses).prod() ** (-1 / len(losses))).item()

    assert failed(check(product, verbose=False), "1000 random losses", "got inf")


def test_perplexity_rejects_tensors_strings_and_in_place_exp() -> None:
    check = ex.check_perplexity
    tensor = check(lambda losses: losses.mean().exp(), verbose=False)
    assert failed(tensor, "expected a Python float, got a tensor (use .item())")
    text = check(lambda losses: f"{math.exp(losses.mean()):.2f}", verbose=False)
    assert failed(text, "expected a Python float, got a str")

    def in_place(losses):
        return losses.exp_().log_().mean().exp().item()

    assert failed(check(in_place, verbose=False), "changed its argument `losses`")


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


def lstm_gates(x, h, w_ih, w_hh, b_ih, b_hh):
    return (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)


def test_lstm_accepts_one_fused_matrix_and_written_out_sigmoid() -> None:
    def fused(x, h, c, w_ih, w_hh, b_ih, b_hh):
        pre = F.linear(torch.cat([x, h], 1), torch.cat([w_ih, w_hh], 1), b_ih + b_hh)
        i, f, g, o = pre.split(h.shape[1], dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_new), c_new

    def written_out(x, h, c, w_ih, w_hh, b_ih, b_hh):
        def sigmoid(t):
            return 1 / (1 + torch.exp(-t))

        i, f, g, o = lstm_gates(x, h, w_ih, w_hh, b_ih, b_hh)
        c_new = sigmoid(f) * c + sigmoid(i) * g.tanh()
        return sigmoid(o) * c_new.tanh(), c_new

    assert passes(ex.check_lstm_cell_step, fused)
    assert passes(ex.check_lstm_cell_step, written_out)


def test_lstm_rejects_gate_order_c_first_and_an_overflowing_tanh() -> None:
    def ifog(x, h, c, w_ih, w_hh, b_ih, b_hh):  # the order of the original papers
        i, f, o, g = lstm_gates(x, h, w_ih, w_hh, b_ih, b_hh)
        c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c_new.tanh(), c_new

    def returns_c_first(*args):
        h_new, c_new = ex.solution_lstm_cell_step(*args)
        return c_new, h_new

    def exp_tanh(x, h, c, w_ih, w_hh, b_ih, b_hh):
        def tanh(t):
            return (torch.exp(2 * t) - 1) / (torch.exp(2 * t) + 1)  # inf / inf

        i, f, g, o = lstm_gates(x, h, w_ih, w_hh, b_ih, b_hh)
        c_new = f.sigmoid() * c + i.sigmoid() * tanh(g)
        return o.sigmoid() * tanh(c_new), c_new

    check = ex.check_lstm_cell_step
    assert failed(check(ifog, verbose=False), "hidden 1", "h_new: values differ")
    assert failed(check(returns_c_first, verbose=False), "h_new:")
    assert failed(check(exp_tanh, verbose=False), "100 times", "non-finite value (nan)")


def test_lstm_rejects_the_builtin_in_place_state_and_numpy() -> None:
    def builtin(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)

    def updates_c_in_place(x, h, c, w_ih, w_hh, b_ih, b_hh):
        i, f, g, o = lstm_gates(x, h, w_ih, w_hh, b_ih, b_hh)
        c *= f.sigmoid()
        c += i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c

    def through_numpy(x, h, c, w_ih, w_hh, b_ih, b_hh):  # cannot train: no gradients
        arrays = [t.numpy() for t in (x, h, c, w_ih, w_hh, b_ih, b_hh)]
        return ex.solution_lstm_cell_step(*map(torch.from_numpy, arrays))

    check = ex.check_lstm_cell_step
    assert failed(check(builtin, verbose=False), "called lstm_cell")
    assert failed(check(updates_c_in_place, verbose=False), "changed its argument `c`")
    assert failed(check(through_numpy, verbose=False), "require gradients", "numpy")
    partial = last_case_only_raises(ex.solution_lstm_cell_step, calls_before=3)
    assert failed(check(partial, verbose=False), "hidden 100", "NotImplementedError")


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


def gru_parts(x, h, w_ih, w_hh, b_ih, b_hh):
    gi, gh = (x @ w_ih.T + b_ih).chunk(3, 1), (h @ w_hh.T + b_hh).chunk(3, 1)
    return gi, gh


def test_gru_accepts_an_interpolation_written_the_other_way() -> None:
    def lerp(x, h, w_ih, w_hh, b_ih, b_hh):
        (i_r, i_z, i_n), (h_r, h_z, h_n) = gru_parts(x, h, w_ih, w_hh, b_ih, b_hh)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return torch.lerp(n, h, z)

    assert passes(ex.check_gru_cell_step, lerp)


def test_gru_rejects_swapped_update_reset_outside_the_bias_and_the_builtin() -> None:
    def swapped_z(x, h, w_ih, w_hh, b_ih, b_hh):
        (i_r, i_z, i_n), (h_r, h_z, h_n) = gru_parts(x, h, w_ih, w_hh, b_ih, b_hh)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        n = (i_n + r * h_n).tanh()
        return z * n + (1 - z) * h

    def reset_before_bias(x, h, w_ih, w_hh, b_ih, b_hh):  # the paper's variant
        hidden = h.shape[1]
        (i_r, i_z, i_n), (h_r, h_z, _) = gru_parts(x, h, w_ih, w_hh, b_ih, b_hh)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        n = (i_n + r * (h @ w_hh[2 * hidden :].T) + b_hh[2 * hidden :]).tanh()
        return (1 - z) * n + z * h

    def builtin(x, h, w_ih, w_hh, b_ih, b_hh):
        return torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)

    def updates_h_in_place(x, h, w_ih, w_hh, b_ih, b_hh):
        (i_r, i_z, i_n), (h_r, h_z, h_n) = gru_parts(x, h, w_ih, w_hh, b_ih, b_hh)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        n = (i_n + r * h_n).tanh()
        return h.mul_(z).add_((1 - z) * n)

    def exp_tanh(x, h, w_ih, w_hh, b_ih, b_hh):
        (i_r, i_z, i_n), (h_r, h_z, h_n) = gru_parts(x, h, w_ih, w_hh, b_ih, b_hh)
        r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
        e = torch.exp(2 * (i_n + r * h_n))
        return (1 - z) * (e - 1) / (e + 1) + z * h  # inf / inf when saturated

    check = ex.check_gru_cell_step
    assert failed(check(exp_tanh, verbose=False), "100 times", "non-finite")
    assert failed(check(swapped_z, verbose=False), "batch 1", "values differ")
    assert failed(check(reset_before_bias, verbose=False), "values differ")
    assert failed(check(builtin, verbose=False), "called gru_cell")
    assert failed(check(updates_h_in_place, verbose=False), "changed its argument `h`")


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


def test_clip_accepts_a_norm_of_norms_and_a_tensor_factor() -> None:
    def norm_of_norms(grads, max_norm):
        total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
        factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        return [g * factor for g in grads]

    assert passes(ex.check_clip_grad_global_norm, norm_of_norms)


def test_clip_rejects_per_tensor_clipping_scaling_up_and_zero_norms() -> None:
    def per_tensor(grads, max_norm):
        return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]

    def always_rescale(grads, max_norm):
        total = torch.sqrt(sum((g**2).sum() for g in grads))
        return [g * max_norm / total for g in grads]

    def no_epsilon(grads, max_norm):  # divides by a norm of 0
        total = torch.sqrt(sum((g**2).sum() for g in grads)).item()
        return [g * min(1.0, max_norm / total) for g in grads]

    check = ex.check_clip_grad_global_norm
    assert failed(check(per_tensor, verbose=False), "each of norm 0.8", "values differ")
    assert failed(check(always_rescale, verbose=False), "nothing to clip")
    assert failed(check(no_epsilon, verbose=False), "norm 0", "ZeroDivisionError")


def test_clip_rejects_the_builtin() -> None:
    def builtin(grads, max_norm):
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return [p.grad for p in params]

    assert failed(
        ex.check_clip_grad_global_norm(builtin, verbose=False),
        "your function called _foreach_norm",
    )


def test_clip_rejects_in_place_generators_float64_and_a_short_buffer() -> None:
    def in_place(grads, max_norm):
        total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
        return [g.mul_(min(1.0, max_norm / (total + 1e-6))) for g in grads]

    def generator(grads, max_norm):
        return (g for g in ex.solution_clip_grad_global_norm(grads, max_norm))

    def in_float64(grads, max_norm):
        return [g.double() for g in ex.solution_clip_grad_global_norm(grads, max_norm)]

    def first_64(grads, max_norm):  # a fixed table of 64 parameters
        return ex.solution_clip_grad_global_norm(grads[:64], max_norm) + grads[64:]

    check = ex.check_clip_grad_global_norm
    assert failed(check(in_place, verbose=False), "changed its argument `grads`")
    assert failed(check(generator, verbose=False), "expected a list, got a generator")
    assert failed(check(in_float64, verbose=False), "item 0: expected dtype")
    assert failed(check(first_64, verbose=False), "100 gradients")


# ------------------------------------------------------------------ TBPTT


def chunks(stream, seq_len, stop=None, step=None):
    """(x, y) chunks as the reference cuts them, unless ``stop`` or ``step`` say."""
    stop = stream.shape[1] - seq_len if stop is None else stop
    for start in range(0, stop, step or seq_len):
        yield (
            stream[:, start : start + seq_len],
            stream[:, start + 1 : start + seq_len + 1],
        )


def train(
    model, stream, seq_len, optimizer, *, detach=True, keep=None, step=None, **backward
):
    """A TBPTT loop with one thing changeable at a time."""
    losses, state = [], None
    for x, y in chunks(stream, seq_len, step=step):
        _, loss, state = model(x, y, state)
        optimizer.zero_grad()
        loss.backward(**backward)
        optimizer.step()
        if detach:
            state = model.detach_state(state)
        losses.append(loss.item() if keep is None else keep(loss))
    return losses


def test_tbptt_accepts_zero_grad_first_and_a_hand_written_detach() -> None:
    def own_detach(model, stream, seq_len, optimizer):
        losses, state = [], None
        for x, y in chunks(stream, seq_len):
            optimizer.zero_grad(set_to_none=True)
            _, loss, state = model(x, y, state)
            loss.backward()
            optimizer.step()
            state = tuple(s.detach() for s in state)
            losses.append(float(loss.detach()))
        return losses

    assert passes(ex.check_tbptt_train, own_detach)


def test_tbptt_explains_a_missing_detach_and_retain_graph() -> None:
    def no_detach(model, stream, seq_len, optimizer):
        return train(model, stream, seq_len, optimizer, detach=False)

    def retain_graph(
        model, stream, seq_len, optimizer
    ):  # what the first error suggests
        return train(model, stream, seq_len, optimizer, detach=False, retain_graph=True)

    check = ex.check_tbptt_train
    assert failed(
        check(no_detach, verbose=False),
        "raised RuntimeError: Trying to backward",
        "detach the state",
    )
    assert failed(
        check(retain_graph, verbose=False),
        "raised RuntimeError: one of the variables needed for gradient computation",
        "retain_graph=True does not help",
        "detach the state",
    )


def test_tbptt_rejects_a_reset_state_overlapping_windows_and_missing_zero_grad() -> (
    None
):
    def reset_every_chunk(model, stream, seq_len, optimizer):
        losses = []
        for x, y in chunks(stream, seq_len):
            _, loss, _ = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    def overlapping_windows(model, stream, seq_len, optimizer):
        return train(model, stream, seq_len, optimizer, step=1)

    def no_zero_grad(model, stream, seq_len, optimizer):
        optimizer.zero_grad = lambda *args, **kwargs: None
        return train(model, stream, seq_len, optimizer)

    check = ex.check_tbptt_train
    assert failed(check(reset_every_chunk, verbose=False), "item 1")
    assert failed(check(overlapping_windows, verbose=False), "expected 3 items")
    assert failed(check(no_zero_grad, verbose=False), "item 2")


def test_tbptt_rejects_a_short_last_chunk_and_tensors_for_floats() -> None:
    def one_chunk_too_many(model, stream, seq_len, optimizer):
        losses, state = [], None
        for x, y in chunks(stream, seq_len, stop=stream.shape[1] - 1):
            x = x[:, : y.shape[1]]  # the last chunk is cut short to fit its targets
            _, loss, state = model(x, y, state)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            state = model.detach_state(state)
            losses.append(loss.item())
        return losses

    def keeps_tensors(model, stream, seq_len, optimizer):
        return train(model, stream, seq_len, optimizer, keep=lambda loss: loss)

    check = ex.check_tbptt_train
    assert failed(
        check(one_chunk_too_many, verbose=False), "12 tokens", "expected 2 items, got 3"
    )
    assert failed(
        check(keeps_tensors, verbose=False),
        "item 0: expected a Python float, got a tensor that keeps an autograd graph",
    )


def test_tbptt_checker_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_tbptt_train(ex.solution_tbptt_train, verbose=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_tbptt_reference_carries_the_state() -> None:
    """The first chunk's loss is a fresh forward's; later chunks see earlier text."""
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=5, d_embed=4, d_hidden=8))
    stream = torch.randint(0, 5, (2, 13), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model(stream[:, :4], stream[:, 1:5])[1].item()
    losses = ex.solution_tbptt_train(
        model, stream, 4, torch.optim.SGD(model.parameters(), lr=0.0)
    )
    assert len(losses) == 3 and losses[0] == pytest.approx(first)
