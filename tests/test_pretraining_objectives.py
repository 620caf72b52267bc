"""Pretraining pieces on their own: the vocabulary's special ids, packed streams, masked
windows and their loss, next-sentence pairs, and bits per character."""

from __future__ import annotations

import math

import pytest
import torch

from lm_course.models.encoder import EncoderConfig, TransformerEncoder
from lm_course.models.gpt import GPT, GPTConfig
from lm_course.pretraining import (
    IGNORE_INDEX,
    MLMBatches,
    Vocab,
    bits_per_character,
    make_pairs,
    mlm_loss,
    pack_documents,
    pair_batch,
    segments,
    stream_nll,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "A gripping, funny film.\nAnother line here!",
    "Science is fun. It is also hard! Really?",
] * 20


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab.train(TEXTS, 45)


# ------------------------------------------------------------------ vocabulary


def test_special_ids_follow_the_pieces_and_decode_to_nothing(vocab) -> None:
    assert len(vocab) == 47
    assert (vocab.bos, vocab.eos, vocab.pad, vocab.mask) == (1, 2, 45, 46)
    ids = vocab.encode("the fox")
    assert (
        vocab.decode([vocab.bos, *ids, vocab.eos, vocab.pad, vocab.mask]) == "the fox"
    )


def test_an_uncased_vocabulary_lowercases_and_a_cased_one_does_not(vocab) -> None:
    assert vocab.encode("THE FOX") == vocab.encode("the fox")
    cased = Vocab(vocab.tokenizer, lowercase=False)
    assert cased.encode("THE FOX") != cased.encode("the fox")
    again = Vocab.from_bytes(vocab.to_bytes())
    assert again.encode("a gripping film") == vocab.encode("a gripping film")


def test_batch_pads_on_the_right_and_keeps_eos_when_cutting(vocab) -> None:
    ids, keep = vocab.batch(["the fox", "science is fun . it is also hard"], max_len=8)
    assert ids.shape == keep.shape and ids.dtype == torch.long
    assert ids.shape[1] == 8
    assert ids[1, 0] == vocab.eos and ids[1, -1] == vocab.eos
    short = ids[0][keep[0]]
    assert short.tolist() == [vocab.eos, *vocab.encode("the fox"), vocab.eos]
    bare, _ = vocab.batch(["the fox"], max_len=8, edges=False)
    assert bare[0].tolist() == vocab.encode("the fox")
    assert (ids[0][~keep[0]] == vocab.pad).all()
    assert keep[0].tolist() == sorted(keep[0].tolist(), reverse=True)
    with pytest.raises(ValueError, match="max_len"):
        vocab.batch(["x"], max_len=2)
    with pytest.raises(TypeError, match="str"):
        vocab.batch([3], max_len=8)


def test_packed_streams_separate_documents_and_shuffle_with_a_seed(vocab) -> None:
    docs = ["the fox", "a film", "science"]
    stream = pack_documents(vocab, docs, shuffle_seed=None)
    expected = [i for d in docs for i in [*vocab.encode(d), vocab.eos]]
    assert stream.tolist() == expected
    a = pack_documents(vocab, docs, shuffle_seed=3)
    assert a.tolist() == pack_documents(vocab, docs, shuffle_seed=3).tolist()
    assert sorted(a.tolist()) == sorted(expected)
    with pytest.raises(TypeError, match="list of strings"):
        pack_documents(vocab, "the fox")


# ------------------------------------------------------------------ masked LM


def test_masked_windows_choose_about_15_percent_never_specials(vocab) -> None:
    stream = pack_documents(vocab, TEXTS)
    batches = MLMBatches({"train": stream}, block_size=32, batch_size=64, vocab=vocab)
    inputs, targets = batches("train", torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (64, 32)
    chosen = targets != IGNORE_INDEX
    assert 0.12 < chosen.float().mean() < 0.18
    assert not torch.isin(targets[chosen], torch.tensor([vocab.eos])).any()
    # 80 % of the chosen become [MASK]; the rest keep or change their id.
    masked = (inputs[chosen] == vocab.mask).float().mean()
    assert 0.7 < masked < 0.9
    again = batches("train", torch.Generator().manual_seed(0))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)


def test_mlm_loss_equals_the_encoders_own_loss(vocab) -> None:
    torch.manual_seed(0)
    encoder = TransformerEncoder(
        EncoderConfig(len(vocab), 16, n_layer=1, n_head=2, d_model=16, pad_id=vocab.pad)
    ).eval()
    stream = pack_documents(vocab, TEXTS)
    batch = MLMBatches({"train": stream}, 16, 8, vocab)(
        "train", torch.Generator().manual_seed(1)
    )
    assert mlm_loss(encoder, batch).item() == pytest.approx(
        encoder(*batch)[1].item(), rel=1e-5
    )
    nothing = torch.full_like(batch[1], IGNORE_INDEX)
    with pytest.raises(ValueError, match="no position is masked"):
        mlm_loss(encoder, (batch[0], nothing))


# ------------------------------------------------------------------ NSP / SOP


def test_segments_are_lines_of_a_speech_or_sentences_of_a_paragraph() -> None:
    assert segments("ROMEO:\nBut soft!\nWhat light?") == ["But soft!", "What light?"]
    assert segments("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]


def test_random_negatives_come_from_another_document_and_swaps_reverse() -> None:
    docs = ["a1. a2. a3.", "b1. b2.", "c1. c2. c3. c4."]
    nsp = make_pairs(docs, 200, negatives="random", seed=1)
    assert [p.label for p in nsp[:4]] == [1, 0, 1, 0]
    for pair in nsp:
        same = pair.first[0] == pair.second[0]
        assert same == (pair.label == 1)
        if pair.label == 1:
            assert int(pair.second[1]) == int(pair.first[1]) + 1
    sop = make_pairs(docs, 200, negatives="swap", seed=1)
    for pair in sop:
        assert pair.first[0] == pair.second[0]  # same document: topic gives nothing
        step = int(pair.second[1]) - int(pair.first[1])
        assert step == (1 if pair.label == 1 else -1)
    assert make_pairs(docs, 10, seed=4) == make_pairs(docs, 10, seed=4)
    with pytest.raises(ValueError, match="two documents"):
        make_pairs(["single sentence.", "a. b."], 4)


def test_pair_batch_joins_two_segments_and_cuts_the_longer_one(vocab) -> None:
    pairs = make_pairs(
        ["the quick brown fox jumps. over the lazy dog.", "a film. science."], 4
    )
    ids, keep, labels = pair_batch(vocab, pairs, max_len=12)
    assert ids.shape[1] <= 12 and labels.tolist() == [1, 0, 1, 0]
    row = ids[0][keep[0]].tolist()
    assert row[0] == vocab.eos and row[-1] == vocab.eos
    assert row.count(vocab.eos) == 3


# ------------------------------------------------------------------ bits per character


def test_stream_nll_adds_every_predicted_token_once() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=5, n_layer=1, n_head=1, d_model=8))
    ids = torch.randint(0, 11, (23,))
    total, count = stream_nll(model, ids, block_size=5, batch_size=2)
    assert count == 22
    expected = 0.0
    for start in range(0, 22, 5):
        x = ids[start : start + 5][: 22 - start]
        y = ids[start + 1 : start + 1 + len(x)]
        logits = model(x[None])[0][0]
        expected += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
    assert total == pytest.approx(expected, rel=1e-5)


def test_a_uniform_guess_costs_log2_of_the_vocabulary_per_token() -> None:
    model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=1, d_model=8))
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    total, count = stream_nll(model, torch.arange(16) % 16, block_size=8)
    # Each token is 2 characters: 4 bits per token are 2 bits per character.
    assert bits_per_character(total, 2 * count) == pytest.approx(2.0, rel=1e-5)
    assert bits_per_character(math.log(2) * 10, 5) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="n_chars"):
        bits_per_character(1.0, 0)
