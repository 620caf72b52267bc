"""Beam search against greedy decoding and against an exhaustive search."""

from __future__ import annotations

import itertools

import pytest
import torch

from lm_course.models.seq2seq import EncoderDecoder, Seq2SeqConfig, greedy_decode
from lm_course.translation.beam import beam_search

PAD, BOS, EOS = 0, 1, 2


def _model(seed: int, vocab: int = 6) -> EncoderDecoder:
    torch.manual_seed(seed)
    config = Seq2SeqConfig(
        src_vocab_size=7, tgt_vocab_size=vocab, max_len=8, n_layer=1, n_head=2,
        d_model=16, dropout=0.0, tie_weights=False,
    )  # fmt: skip
    model = EncoderDecoder(config).eval()
    with torch.no_grad():  # sharper, more varied distributions than the initial ones
        model.out.weight.normal_(0.0, 2.0)
    return model


@torch.no_grad()
def _log_prob(model: EncoderDecoder, src: torch.Tensor, seq: list[int]) -> float:
    """Total log-probability of ``seq`` (ending with EOS) given one source row."""
    tgt_in = torch.tensor([[BOS] + seq[:-1]])
    logits, _ = model(src[None], tgt_in)
    logp = torch.log_softmax(logits[0], dim=-1)
    return float(sum(logp[i, t] for i, t in enumerate(seq)))


def _exhaustive(model: EncoderDecoder, src: torch.Tensor, max_len: int) -> list[int]:
    """The most likely output of at most ``max_len`` tokens: ended by EOS, or cut."""
    words = list(range(3, model.config.tgt_vocab_size)) + [BOS]
    candidates = [[*body, EOS] for n in range(max_len)
                  for body in itertools.product(words, repeat=n)]  # fmt: skip
    candidates += [list(body) for body in itertools.product(words, repeat=max_len)]
    return max(candidates, key=lambda seq: _log_prob(model, src, seq))


def test_beam_of_one_is_greedy() -> None:
    compared = 0
    for seed in range(4):
        model = _model(seed)
        src = torch.randint(1, 7, (5, 6), generator=torch.Generator().manual_seed(seed))
        greedy = greedy_decode(model, src, BOS, EOS, 6)
        beam = beam_search(model, src, BOS, EOS, 6, beam_size=1, alpha=0.0)
        for g, b in zip(greedy.tolist(), beam.tolist(), strict=True):
            body = g[: g.index(EOS)] if EOS in g else g
            # greedy_decode may pick PAD from an untrained model; beam search never
            # does (a trained model gives PAD no probability either).
            if PAD not in body:
                assert b == g
                compared += 1
    assert compared >= 10


@pytest.mark.parametrize("seed", range(6))
def test_wide_beam_finds_the_most_likely_output(seed: int) -> None:
    model = _model(seed, vocab=5)
    src = torch.randint(1, 7, (1, 4), generator=torch.Generator().manual_seed(seed))
    # 3 words (ids 3, 4 and BOS) and EOS, at most 3 tokens: a beam of 16 never drops a
    # prefix (4 + 3 * 4 = 16 candidates at most), so with alpha = 0 it must return the
    # exhaustive optimum.
    best = _exhaustive(model, src[0], max_len=3)
    out = beam_search(model, src, BOS, EOS, 3, beam_size=16, alpha=0.0)[0].tolist()
    assert out[: len(best)] == best
    greedy = greedy_decode(model, src, BOS, EOS, 3)[0].tolist()
    greedy = greedy[: greedy.index(EOS) + 1] if EOS in greedy else greedy
    if PAD not in greedy:  # beam search is never worse than greedy
        assert _log_prob(model, src[0], best) >= _log_prob(model, src[0], greedy) - 1e-5


def test_batched_beam_equals_one_sentence_at_a_time() -> None:
    model = _model(1)
    src = torch.tensor([[3, 4, 5, 0, 0], [6, 5, 4, 3, 2], [2, 2, 0, 0, 0]])
    batched = beam_search(model, src, BOS, EOS, 7, beam_size=3)
    for i in range(3):
        row = src[i : i + 1, : int((src[i] != 0).sum())]
        alone = beam_search(model, row, BOS, EOS, 7, beam_size=3)[0]
        assert batched[i, : alone.numel()].tolist() == alone.tolist()
        assert (batched[i, alone.numel() :] == PAD).all()


def test_finished_rows_are_padded_and_arguments_checked() -> None:
    model = _model(2)
    src = torch.tensor([[3, 4, 5]])
    out = beam_search(model, src, BOS, EOS, 8, beam_size=4)[0].tolist()
    if EOS in out:
        assert all(t == PAD for t in out[out.index(EOS) + 1 :])
    assert PAD not in out[: out.index(EOS)] if EOS in out else PAD not in out
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, BOS, EOS, 8, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        beam_search(model, src, BOS, EOS, 9)
    with pytest.raises(TypeError, match="EncoderDecoder"):
        beam_search(torch.nn.Linear(2, 2), src, BOS, EOS, 4)  # type: ignore[arg-type]
    assert model.training is False
