"""Tests for the LSTM language model (the corrected model of article 000, §5.2)."""

from __future__ import annotations

import math

import pytest
import torch

from lm_course.models.lstm import LSTMConfig, LSTMLanguageModel


def small_model(**overrides: object) -> LSTMLanguageModel:
    torch.manual_seed(0)
    config = {"vocab_size": 11, "d_embed": 8, "d_hidden": 16, "n_layers": 2} | overrides
    return LSTMLanguageModel(LSTMConfig(**config))


def test_shapes() -> None:
    model = small_model()
    idx = torch.randint(0, 11, (3, 7))
    logits, loss, (h, c) = model(idx)
    assert logits.shape == (3, 7, 11)
    assert loss is None
    assert h.shape == c.shape == (2, 3, 16)
    logits, loss, _ = model(idx, idx)
    assert loss.shape == ()


def test_loss_at_init_is_log_vocab() -> None:
    # Untrained, the model spreads probability about evenly: loss ~ ln(vocab_size).
    model = small_model(vocab_size=65, d_hidden=64)
    idx = torch.randint(0, 65, (4, 32), generator=torch.Generator().manual_seed(0))
    _, loss, _ = model(idx, idx)
    assert loss.item() == pytest.approx(math.log(65), abs=0.1)


def test_loss_is_mean_over_every_position() -> None:
    # The article's model predicts only from output[-1]; this one scores every position.
    model = small_model()
    idx = torch.randint(0, 11, (2, 5))
    targets = torch.randint(0, 11, (2, 5))
    logits, loss, _ = model(idx, targets)
    manual = -torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)


def test_training_reduces_loss() -> None:
    model = small_model(vocab_size=5)
    sequence = torch.tensor([0, 1, 2, 3, 4] * 5)  # a repeated pattern, easy to learn
    x, y = sequence[None, :-1], sequence[None, 1:]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        _, loss, _ = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_carried_state_equals_one_long_pass() -> None:
    model = small_model().eval()
    idx = torch.randint(0, 11, (2, 12))
    full, _, full_state = model(idx)
    first, _, state = model(idx[:, :5])
    second, _, state = model(idx[:, 5:], state=state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full)
    torch.testing.assert_close(state[0], full_state[0])
    # Without the carried state the second half is predicted differently.
    fresh, _, _ = model(idx[:, 5:])
    assert not torch.allclose(fresh, second)


def test_init_state_equals_no_state() -> None:
    model = small_model().eval()
    idx = torch.randint(0, 11, (3, 4))
    state = model.init_state(3)
    assert state[0].shape == (2, 3, 16) and not state[0].any()
    torch.testing.assert_close(model(idx, state=state)[0], model(idx)[0])


def test_detach_state_allows_truncated_bptt() -> None:
    model = small_model()
    idx = torch.randint(0, 11, (2, 6))
    _, loss, state = model(idx, idx)
    loss.backward()
    state = LSTMLanguageModel.detach_state(state)
    assert not state[0].requires_grad
    _, loss, _ = model(idx, idx, state)
    loss.backward()  # would fail without the detach: the first graph is freed


def test_num_params_and_dropout() -> None:
    model = small_model(n_layers=1, dropout=0.2)
    # embedding + LSTM (4 gates: input and hidden weights, two biases) + output layer
    expected = 11 * 8 + 4 * 16 * (8 + 16 + 2) + 16 * 11 + 11
    assert model.num_params() == expected
    assert model.lstm.dropout == 0.0  # one layer: nothing between layers to drop
    idx = torch.randint(0, 11, (2, 4))
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])


def test_ignored_targets_are_left_out_of_the_loss() -> None:
    model = small_model()
    idx = torch.randint(0, 11, (2, 6))
    targets = idx.clone()
    targets[:, 3:] = -100  # e.g. padding
    _, loss, _ = model(idx, targets)
    _, first_half, _ = model(idx[:, :3], targets[:, :3])
    assert loss.item() == pytest.approx(first_half.item(), rel=1e-5)


def test_trainer_convention_loss_at_index_1() -> None:
    model = small_model()
    batch = (torch.randint(0, 11, (2, 4)), torch.randint(0, 11, (2, 4)))
    assert model(*batch)[1].ndim == 0


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("vocab_size", 0, ValueError, r"vocab_size must be an integer >= 1, got 0"),
        ("d_embed", 8.0, TypeError, r"d_embed must be an integer >= 1, got 8\.0"),
        ("d_hidden", -1, ValueError, r"d_hidden must be an integer >= 1, got -1"),
        ("n_layers", True, TypeError, r"n_layers must be an .* got True \(bool\)"),
        ("n_layers", None, TypeError, r"n_layers must be an .* got None \(NoneType\)"),
        ("dropout", 1.0, ValueError, r"dropout must be a .*>= 0 and < 1, got 1\.0"),
        ("dropout", "0.1", TypeError, r"dropout must be a .* got '0\.1' \(str\)"),
        ("dropout", float("nan"), ValueError, r"dropout must be a finite number"),
    ],
)
def test_config_errors(
    field: str, value: object, error: type[Exception], message: str
) -> None:
    kwargs = {"vocab_size": 10, field: value}
    with pytest.raises(error, match="LSTMConfig." + message):
        LSTMConfig(**kwargs)


def test_forward_errors() -> None:
    model = small_model()
    with pytest.raises(TypeError, match=r"config must be an LSTMConfig, got dict"):
        LSTMLanguageModel({"vocab_size": 10})
    with pytest.raises(
        ValueError,
        match=r"idx must have shape \(batch, seq\), got \(5,\); .* idx.unsqueeze\(0\)",
    ):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match=r"idx must hold integer token ids .*float32"):
        model(torch.zeros(2, 5))
    with pytest.raises(
        ValueError, match=r"idx contains token id 11, outside the vocabulary \[0, 10\]"
    ):
        model(torch.tensor([[0, 11]]))
    idx = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(
        ValueError, match=r"targets must have shape \(2, 5\), got \(2, 4"
    ):
        model(idx, idx[:, :4])
    with pytest.raises(ValueError, match=r"targets contains -1, .*use -100 for"):
        model(idx, idx - torch.eye(2, 5, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"idx must hold integer token ids .*torch.bool"
    ):
        model(idx.bool())
    with pytest.raises(ValueError, match=r"at least one row and one token, .*\(2, 0\)"):
        model(idx[:, :0])
    with pytest.raises(
        ValueError,
        match=r"state h must have shape .* = \(2, 2, 16\), got .*\(2, 3, 16\)",
    ):
        model(idx, state=model.init_state(3))
    with pytest.raises(TypeError, match=r"state must be a tuple \(h, c\)"):
        model(idx, state=torch.zeros(2, 2, 16))
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        model.init_state(0)
