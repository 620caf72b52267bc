"""Distillation: the mixed loss, its limits, and the trainer's loss_fn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from training_helpers import markov_tokens

from lm_course.compression import DistillationLoss, distillation_loss
from lm_course.models.gpt import GPT, GPTConfig
from lm_course.training import LMBatches, TrainConfig, evaluate, train, train_val_split


def _logits(seed: int, shape=(4, 6, 11)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def test_alpha_zero_is_cross_entropy_and_a_perfect_student_pays_no_kl() -> None:
    s, t = _logits(0), _logits(1)
    y = torch.randint(0, 11, (4, 6), generator=torch.Generator().manual_seed(2))
    ce = F.cross_entropy(s.reshape(-1, 11), y.reshape(-1))
    torch.testing.assert_close(distillation_loss(s, t, y, alpha=0.0), ce)
    same = distillation_loss(s, s, y, alpha=0.7, temperature=3.0)
    torch.testing.assert_close(same, 0.3 * ce)


def test_the_soft_term_is_the_kl_divergence_times_t_squared() -> None:
    s, t = _logits(0), _logits(1)
    y = torch.zeros(4, 6, dtype=torch.long)
    temperature = 2.5
    loss = distillation_loss(s, t, y, alpha=1.0, temperature=temperature)
    kl = F.kl_div(
        F.log_softmax(s / temperature, -1).reshape(-1, 11),
        F.log_softmax(t / temperature, -1).reshape(-1, 11),
        reduction="batchmean",
        log_target=True,
    )
    torch.testing.assert_close(loss, temperature**2 * kl)


def test_ignored_positions_count_in_neither_term() -> None:
    s, t = _logits(0), _logits(1)
    y = torch.randint(0, 11, (4, 6), generator=torch.Generator().manual_seed(3))
    y_ignored = y.clone()
    y_ignored[:, 3:] = -100
    s_changed = s.clone()
    s_changed[:, 3:] += 5.0 * _logits(4)[:, 3:]  # whatever happens at ignored places
    a = distillation_loss(s, t, y_ignored)
    b = distillation_loss(s_changed, t, y_ignored)
    torch.testing.assert_close(a, b)
    assert a != distillation_loss(s, t, y)


def test_no_gradient_flows_into_the_teacher_and_shapes_are_checked() -> None:
    s = _logits(0).requires_grad_()
    t = _logits(1).requires_grad_()
    distillation_loss(s, t, torch.zeros(4, 6, dtype=torch.long)).backward()
    assert s.grad is not None and t.grad is None
    with pytest.raises(ValueError, match="same vocabulary"):
        distillation_loss(_logits(0), _logits(1, (4, 6, 12)), torch.zeros(4, 6).long())
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        distillation_loss(s, t, torch.zeros(4, 6).long(), alpha=2.0)


def _gpt(width: int, seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(vocab_size=16, block_size=12, n_layer=1, n_head=2, d_model=width)
    )


def test_a_student_trains_with_the_teachers_help_and_evaluates_on_plain_loss() -> None:
    batches = LMBatches(train_val_split(markov_tokens()), block_size=12, batch_size=8)
    settings = dict(lr=1e-2, eval_batches=4, device="cpu", progress=False, seed=0)
    teacher = _gpt(32, 0)
    train(teacher, batches, TrainConfig(max_steps=60, **settings))
    loss_fn = DistillationLoss(teacher, temperature=2.0, alpha=0.5)
    student = _gpt(8, 1)
    untrained = evaluate(student, batches, "val", batches=4, seed=0)
    history = train(
        student, batches, TrainConfig(max_steps=30, **settings), loss_fn=loss_fn
    )
    # The trainer's evaluation used the plain cross-entropy: the same number evaluate
    # gives without the teacher.
    plain = evaluate(student, batches, "val", batches=4, seed=0)
    assert history.val_loss[-1] == pytest.approx(plain, abs=1e-6)
    assert plain < untrained - 0.4
    assert not any(p.requires_grad for p in teacher.parameters())
