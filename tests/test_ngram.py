"""Tests for the count-based n-gram language model."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from lm_course.models.ngram import NGramModel
from lm_course.tokenizers import CharTokenizer


@pytest.fixture(scope="module")
def shakespeare_ids(shared_data: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Train and validation character ids (90% / 10%), and the vocabulary size."""
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    tok = CharTokenizer.from_text(text)
    ids = torch.tensor(tok.encode(text))
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:], tok.vocab_size


def test_counts_by_hand() -> None:
    ids = [0, 1, 2, 0, 1, 2, 0, 1]
    model = NGramModel(order=2, vocab_size=3, add_k=1.0).fit(ids)
    # After 0 comes 1 three times out of three: (3 + 1) / (3 + 3).
    assert model.prob([0], 1) == pytest.approx(4 / 6)
    assert model.prob([0], 2) == pytest.approx(1 / 6)
    # Only the last order - 1 tokens of the context matter.
    assert model.prob([2, 2, 0], 1) == pytest.approx(4 / 6)
    mle = NGramModel(order=2, vocab_size=3, add_k=0).fit(ids)
    assert mle.prob([0], 1) == 1.0 and mle.prob([0], 0) == 0.0


def test_unigram_counts() -> None:
    model = NGramModel(order=1, vocab_size=4, add_k=0.0).fit([0, 0, 0, 1])
    assert model.next_distribution([]).tolist() == [0.75, 0.25, 0.0, 0.0]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("add_k", [0.0, 0.5, 1.0])
def test_distributions_sum_to_one(order: int, add_k: float) -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5, (200,), generator=gen)
    model = NGramModel(order, vocab_size=7, add_k=add_k).fit(ids)
    for context in ([1, 2], [4, 4], [6, 6]):  # 5 and 6 never occur: unseen contexts
        dist = model.next_distribution(context)
        assert dist.shape == (7,) and dist.dtype == torch.float64
        assert dist.sum().item() == pytest.approx(1.0)
        assert (dist >= 0).all()


def test_unseen_context_is_uniform() -> None:
    for add_k in (0.0, 1.0):
        model = NGramModel(2, vocab_size=4, add_k=add_k).fit([0, 1, 0, 1])
        assert model.next_distribution([3]).tolist() == [0.25] * 4


def test_untrained_model_is_uniform() -> None:
    model = NGramModel(order=3, vocab_size=65)
    ids = list(range(65)) * 3
    assert model.perplexity(ids) == pytest.approx(65.0)
    assert model.log_likelihood(ids) == pytest.approx(-(len(ids) - 2) * math.log(65))


def test_perplexity_is_exp_of_mean_nll() -> None:
    ids = [0, 1, 1, 0, 2, 1, 0]
    model = NGramModel(2, 3, add_k=0.5).fit(ids)
    test = [1, 0, 2, 2]
    nll = -sum(math.log(model.prob([a], b)) for a, b in zip(test, test[1:]))
    assert model.log_likelihood(test) == pytest.approx(-nll)
    assert model.perplexity(test) == pytest.approx(math.exp(nll / 3))  # 3 scored tokens


def test_mle_gives_infinite_perplexity_on_unseen() -> None:
    model = NGramModel(2, 3, add_k=0.0).fit([0, 1, 0, 1])
    assert model.perplexity([0, 1, 0]) == pytest.approx(1.0)
    assert model.perplexity([0, 0]) == math.inf


def test_shakespeare_bigram_and_trigram(
    shakespeare_ids: tuple[torch.Tensor, torch.Tensor, int],
):
    train, val, vocab = shakespeare_ids
    start = time.perf_counter()
    bigram = NGramModel(2, vocab, add_k=1.0).fit(train)
    ppl2 = bigram.perplexity(val)
    trigram = NGramModel(3, vocab, add_k=0.1).fit(train)
    ppl3 = trigram.perplexity(val)
    assert time.perf_counter() - start < 10  # well under 1 s on one core
    assert 10 < ppl2 < 14  # about 12.0: far below the uniform 65
    assert ppl3 < ppl2  # more context helps
    assert NGramModel(1, vocab).fit(train).perplexity(val) > ppl2


def test_add_k_effect(shakespeare_ids: tuple[torch.Tensor, torch.Tensor, int]) -> None:
    train, val, vocab = shakespeare_ids
    train = train[:20_000]  # little data: many 4-grams of val are unseen
    ppl = {
        k: NGramModel(4, vocab, add_k=k).fit(train).perplexity(val)
        for k in (0.0, 0.01, 10)
    }
    assert ppl[0.0] == math.inf  # unseen 4-grams get probability 0
    assert ppl[0.01] < ppl[10]  # a huge k flattens every distribution
    assert ppl[10] < vocab  # ...toward uniform, but still better than it
    # On the training data itself, less smoothing always fits better.
    fit = [
        NGramModel(4, vocab, add_k=k).fit(train).perplexity(train)
        for k in (0.0, 0.1, 1.0)
    ]
    assert fit[0] < fit[1] < fit[2]


def test_sample_is_reproducible_and_follows_counts() -> None:
    model = NGramModel(2, 3, add_k=0.0).fit([0, 1, 2] * 10)
    # Without smoothing, 0 -> 1 -> 2 -> 0 is the only path.
    assert model.sample([0], 6) == [1, 2, 0, 1, 2, 0]
    smooth = NGramModel(3, 5, add_k=1.0).fit([0, 1, 2, 3, 4] * 10)
    a = smooth.sample([0, 1], 20, generator=torch.Generator().manual_seed(1))
    b = smooth.sample([0, 1], 20, generator=torch.Generator().manual_seed(1))
    assert a == b and len(a) == 20 and all(0 <= i < 5 for i in a)
    assert smooth.sample(torch.tensor([0, 1]), 0) == []


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"order must be an integer >= 1, got 0"):
        NGramModel(0, 10)
    with pytest.raises(TypeError, match=r"order must be an integer >= 1, got 2\.0"):
        NGramModel(2.0, 10)
    with pytest.raises(TypeError, match=r"order must be an integer >= 1, got True"):
        NGramModel(True, 10)
    with pytest.raises(ValueError, match=r"vocab_size must be an integer >= 1, got -3"):
        NGramModel(2, -3)
    with pytest.raises(ValueError, match=r"add_k must be a finite number >= 0, got -1"):
        NGramModel(2, 10, add_k=-1)
    with pytest.raises(
        ValueError, match=r"add_k must be a finite number >= 0, got nan"
    ):
        NGramModel(2, 10, add_k=float("nan"))
    with pytest.raises(
        ValueError, match=r"add_k must be a finite number >= 0, got inf"
    ):
        NGramModel(2, 10, add_k=float("inf"))
    with pytest.raises(TypeError, match=r"add_k must be .* got '1' \(str\)"):
        NGramModel(2, 10, add_k="1")
    with pytest.raises(TypeError, match=r"add_k must be .* got None \(NoneType\)"):
        NGramModel(2, 10, add_k=None)
    with pytest.raises(
        ValueError, match=r"order=12 with vocab_size=65 .*smaller order"
    ):
        NGramModel(12, 65)
    model = NGramModel(3, 5)
    with pytest.raises(ValueError, match=r"token id 7, outside \[0, vocab_size=5\)"):
        model.fit([0, 1, 7])
    with pytest.raises(ValueError, match=r"token id -1, outside"):
        model.fit(torch.tensor([0, 1, -1]))
    with pytest.raises(
        ValueError, match=r"ids has 2 tokens, but an order-3 model needs at least 3"
    ):
        model.fit([0, 1])
    with pytest.raises(ValueError, match=r"context has 1 tokens, .* at least 2"):
        model.next_distribution([0])
    with pytest.raises(TypeError, match=r"ids\[1\]=1.5 is not an int token id"):
        model.fit([0, 1.5, 2])
    with pytest.raises(
        TypeError, match=r"ids must be a list of int token ids .* got str"
    ):
        model.fit("hello")
    with pytest.raises(TypeError, match=r"1-D integer tensor, got shape \(2, 3\)"):
        model.fit(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"dtype torch.float32"):
        model.fit(torch.zeros(5))
    with pytest.raises(
        ValueError, match=r"next_id must be an integer in \[0, 4\], got 5"
    ):
        model.prob([0, 1], 5)
    with pytest.raises(ValueError, match=r"num_tokens must be an integer >= 0, got -1"):
        model.sample([0, 1], -1)


def test_bool_ids_are_refused() -> None:
    with pytest.raises(TypeError, match=r"dtype torch.bool"):
        NGramModel(2, 5).fit(torch.tensor([True, False, True]))
