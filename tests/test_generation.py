"""Tests for lm_course.generation: sampling filters and the decoding loop."""

import math

import pytest
import torch

from lm_course.generation import (
    apply_temperature,
    generate,
    sample_next,
    top_k_filter,
    top_p_filter,
)
from lm_course.models.gpt import GPT, POSITIONAL_KINDS, GPTConfig

VOCAB = 17
INF = float("-inf")


def peaked_gpt(**overrides) -> GPT:
    """A small random GPT with larger weights, so that its next-token distributions
    are peaked: the tests then compare real choices, not near-ties decided by
    rounding."""
    torch.manual_seed(0)
    settings = dict(vocab_size=VOCAB, block_size=10, n_layer=2, n_head=2, d_model=16)
    model = GPT(GPTConfig(**{**settings, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model


# ---------------------------------------------------------------------------- filters


def test_temperature_scales_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    torch.testing.assert_close(apply_temperature(logits, 0.5), logits * 2)
    with pytest.raises(
        ValueError, match="temperature must be a finite number > 0, got 0.*greedy=True"
    ):
        apply_temperature(logits, 0.0)


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0], [0.0, 0.0, 9.0, 1.0]])
    expected = torch.tensor([[INF, 5.0, INF, 4.0], [INF, INF, 9.0, 1.0]])
    assert torch.equal(top_k_filter(logits, 2), expected)
    assert torch.equal(top_k_filter(logits, 10), logits)  # k > vocab keeps everything
    assert torch.equal(
        top_k_filter(torch.tensor([[1.0, 1.0, 0.0]]), 1),
        torch.tensor([[1.0, 1.0, INF]]),
    )
    with pytest.raises(
        ValueError, match="top_k must be an integer >= 1, got 0; None keeps"
    ):
        top_k_filter(logits, 0)


def test_top_p_keeps_the_nucleus():
    logits = torch.tensor([[0.5, 0.05, 0.3, 0.15]]).log()
    kept = lambda p: torch.isfinite(top_p_filter(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.5) == [True, False, False, False]
    assert kept(0.79) == [True, False, True, False]
    assert kept(0.85) == [True, False, True, True]
    assert kept(0.01) == [True, False, False, False]  # the top token always stays
    assert kept(1.0) == [True, True, True, True]
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(
            ValueError, match=r"top_p must be a finite number > 0 and <= 1"
        ):
            top_p_filter(logits, bad)


def test_sample_next():
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    assert sample_next(logits, greedy=True).tolist() == [1, 0]
    assert sample_next(logits, top_k=1).tolist() == [1, 0]
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, generator=g) for _ in range(3000)])
    freq = torch.bincount(draws[:, 0], minlength=3) / 3000
    torch.testing.assert_close(freq, torch.softmax(logits[0], -1), atol=0.03, rtol=0)
    # Low temperature concentrates the mass on the arg-max.
    cold = torch.stack(
        [sample_next(logits, temperature=0.1, generator=g) for _ in range(200)]
    )
    assert (cold[:, 0] == 1).all()


# ---------------------------------------------------------------------------- generate


@pytest.mark.parametrize("window", [None, 4])
@pytest.mark.parametrize("positional", POSITIONAL_KINDS)
def test_cache_gives_the_same_tokens(positional, window):
    model = peaked_gpt(positional=positional, window=window)
    prompt = torch.randint(0, VOCAB, (3, 4))
    # 14 new tokens: the context passes block_size=10, so the cache must fall back too.
    greedy = [
        generate(model, prompt, 14, greedy=True, use_cache=c) for c in (True, False)
    ]
    assert torch.equal(greedy[0], greedy[1])
    assert greedy[0].shape == (3, 18)
    assert len(greedy[0][:, 4:].unique()) > 1  # it says more than one thing
    sampled = [
        generate(
            model,
            prompt,
            14,
            top_k=8,
            top_p=0.95,
            use_cache=c,
            generator=torch.Generator().manual_seed(3),
        )
        for c in (True, False)
    ]
    assert torch.equal(sampled[0], sampled[1])
    assert len(sampled[0][:, 4:].unique()) > 3


def test_generate_crops_long_prompts_and_restores_mode():
    model = peaked_gpt().train()
    prompt = torch.randint(0, VOCAB, (2, 25))  # longer than block_size=10
    for use_cache in (True, False):
        out = generate(model, prompt, 3, greedy=True, use_cache=use_cache)
        assert out.shape == (2, 28) and torch.equal(out[:, :25], prompt)
        assert model.training
    last_block, _ = model.eval()(prompt[:, -10:])
    assert torch.equal(out[:, 25], last_block[:, -1].argmax(-1))
    assert not model.training  # eval stays eval
    assert generate(model, prompt, 0).shape == prompt.shape


def test_stop_tokens_end_rows_independently():
    model = peaked_gpt()
    prompt = torch.randint(0, VOCAB, (4, 3))
    free = generate(model, prompt, 12, greedy=True)
    stop = free[0, 3 + 2].item()  # the token row 0 produces at step 3
    stopped = generate(model, prompt, 12, greedy=True, stop_tokens=[stop])
    for row in range(4):
        new, ref = stopped[row, 3:], free[row, 3 : 3 + stopped.size(1) - 3]
        hits = (ref == stop).nonzero()
        if len(hits) == 0:
            assert torch.equal(new, ref)
            continue
        first = hits[0].item()
        assert torch.equal(new[: first + 1], ref[: first + 1])
        assert (new[first:] == stop).all()  # finished rows repeat their stop token
    # Once every row has finished, generation ends early.
    all_stop = generate(model, prompt, 12, greedy=True, stop_tokens=range(VOCAB))
    assert all_stop.shape == (4, 4)


def test_generate_validates_arguments():
    model = peaked_gpt()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    cases = [
        (
            {"temperature": 0.0},
            ValueError,
            r"temperature must be a finite number > 0, got 0\.0.*greedy=True",
        ),
        ({"temperature": -1.0}, ValueError, "temperature must be a finite number > 0"),
        ({"top_k": 0}, ValueError, "top_k must be an integer >= 1, got 0"),
        ({"top_k": 2.0}, TypeError, r"top_k must be an integer >= 1, got 2\.0"),
        ({"temperature": "1"}, TypeError, r"temperature must be .* got '1' \(str\)"),
        ({"temperature": float("inf")}, ValueError, "temperature must be a finite"),
        ({"greedy": 1}, TypeError, "greedy must be True or False"),
        (
            {"top_p": 0.0},
            ValueError,
            r"top_p must be a finite number > 0 and <= 1, got 0\.0",
        ),
        (
            {"top_p": 1.5},
            ValueError,
            r"top_p must be a finite number > 0 and <= 1, got 1\.5",
        ),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            generate(model, prompt, 3, **kwargs)
    assert generate(model, prompt, 2, temperature=0.0, greedy=True).shape == (1, 4)
    with pytest.raises(
        ValueError, match="max_new_tokens must be an integer >= 0, got -1"
    ):
        generate(model, prompt, -1)
    with pytest.raises(ValueError, match=r"token id 17, outside the vocabulary"):
        generate(model, torch.tensor([[17]]), 2)
    with pytest.raises(
        ValueError, match=r"stop_tokens\[1\] must be an integer in \[0, 16\], got 99"
    ):
        generate(model, prompt, 2, stop_tokens=[3, 99])
    with pytest.raises(TypeError, match="model must be a GPT"):
        generate(torch.nn.Linear(2, 2), prompt, 2)


def test_generation_does_not_track_gradients():
    model = peaked_gpt()
    out = generate(model, torch.zeros(1, 1, dtype=torch.long), 3)
    assert not out.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert math.isfinite(float(out.sum()))


def test_generated_ids_can_be_used_for_training() -> None:
    """Generation runs in inference mode, but hands back an ordinary tensor."""
    from lm_course.generation import generate
    from lm_course.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, d_model=8))
    out = generate(model, torch.zeros(1, 1, dtype=torch.long), 5, greedy=True)
    assert not out.is_inference()
    _, loss = model(out[:, :-1], out[:, 1:])
    loss.backward()  # would fail on an inference tensor


# ----------------------------------------------------------------------------
# non-finite


@pytest.mark.parametrize("greedy", [False, True])
def test_sampling_from_broken_logits_is_refused(greedy):
    nan_row = torch.tensor([[0.0, 1.0], [float("nan"), 0.0]])
    with pytest.raises(ValueError, match=r"logits row 1 contains NaN.*cannot sample"):
        sample_next(nan_row, greedy=greedy)
    ruled_out = torch.tensor([[INF, INF]])
    with pytest.raises(ValueError, match=r"logits row 0 is -inf everywhere"):
        sample_next(ruled_out, greedy=greedy)


def test_a_tiny_temperature_that_overflows_is_named():
    logits = torch.tensor([[1e30, 0.0]])
    with pytest.raises(
        ValueError, match=r"contains \+inf.* \(after dividing by temperature=1e-10\)"
    ):
        sample_next(logits, temperature=1e-10)
    assert sample_next(logits, temperature=1e-10, greedy=True).item() == 0


def test_generate_from_a_diverged_model_says_so():
    model = peaked_gpt()
    with torch.no_grad():
        model.lm_head.weight[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"contains NaN: the model's output is broken"):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3)
