"""Translation data: simplification, grouping, a leak-free split, tokens, batches."""

from __future__ import annotations

import pytest
import torch

from lm_course.translation.batches import PairBatches, encode_source, pad_rows
from lm_course.translation.data import group_pairs, simplify, tatoeba_splits
from lm_course.translation.vocab import (
    Vocab,
    detokenize_en,
    tokenize_en,
    tokenize_zh,
)


def test_simplify_maps_traditional_to_simplified() -> None:
    assert simplify("我不會說法語。") == "我不会说法语。"
    assert simplify("我不会说法语。") == "我不会说法语。"
    assert simplify(" Ｔｏｍ很好。 ") == "Tom很好。"  # full-width letters, spaces
    with pytest.raises(TypeError, match="string"):
        simplify(3)  # type: ignore[arg-type]


def test_group_pairs_joins_pairs_through_shared_sentences() -> None:
    pairs = [("a", "A"), ("b", "B"), ("a", "C"), ("d", "C"), ("e", "E"), ("b", "F")]
    groups = group_pairs(pairs)
    assert groups == [
        [("a", "A"), ("a", "C"), ("d", "C")],
        [("b", "B"), ("b", "F")],
        [("e", "E")],
    ]


@pytest.fixture(scope="module")
def splits(shared_data):  # noqa: ANN001, ANN201
    return tatoeba_splits()


def test_split_shares_no_sentence_and_loses_no_pair(splits) -> None:  # noqa: ANN001
    train_zh = {zh for zh, _ in splits.train}
    train_en = {en for _, en in splits.train}
    for part in (splits.val, splits.test):
        assert not {zh for zh, _ in part} & train_zh
        assert not {en for _, en in part} & train_en
    assert not {zh for zh, _ in splits.val} & {zh for zh, _ in splits.test}
    everything = splits.train + splits.val + splits.test
    assert len(everything) == len(set(everything)) > 22_000  # deduplicated, kept
    assert 0.04 < len(splits.test) / len(everything) < 0.06
    # Traditional duplicates were merged: no sentence is left that zhconv would change.
    assert all(simplify(zh) == zh for zh, _ in everything)
    # Multi-reference view of the test part.
    sources, refs = splits.test_sources, splits.test_references
    assert len(sources) == len(refs) == len(set(sources))
    assert sum(map(len, refs)) == len(splits.test)
    assert max(map(len, refs)) > 1


def test_split_is_fixed_by_the_seed(splits) -> None:  # noqa: ANN001
    again = tatoeba_splits()
    assert again.test == splits.test and again.train == splits.train
    assert tatoeba_splits(seed=1).test != splits.test


def test_english_tokens_round_trip() -> None:
    for text in [
        "I don't speak French.",
        "Tom's car isn't here, is it?",
        "It's nine o'clock.",
        'He said, "Hello."',
        "My sister is twenty-one (really).",
        "I can't, won't and shouldn't.",
    ]:
        assert detokenize_en(tokenize_en(text)) == text
    assert tokenize_en("I can't.") == ["I", "ca", "n't", "."]
    assert tokenize_zh("我 会 说") == ["我", "会", "说"]


def test_vocab_keeps_frequent_tokens_and_maps_the_rest_to_unk() -> None:
    vocab = Vocab.build([["a", "b", "a"], ["c", "b", "a"]], min_count=2)
    assert vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
    assert vocab.encode(["a", "c", "z"]) == [4, vocab.unk_id, vocab.unk_id]
    assert vocab.decode([4, 5, vocab.eos_id, 4]) == ["a", "b"]
    assert Vocab(vocab.itos).itos == vocab.itos  # rebuilt from a stored list
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["a", "a"])


def test_pair_batches_are_length_bucketed_and_shifted() -> None:
    pairs = [("我会", "I can ."), ("你好吗", "How are you ?"), ("好", "Good .")] * 20
    pairs.append(("长" * 70, "Too long ."))  # longer than max_len: dropped
    src_v = Vocab.build((tokenize_zh(z) for z, _ in pairs), 1)
    tgt_v = Vocab.build((tokenize_en(e) for _, e in pairs), 1)
    batches = PairBatches({"train": pairs}, src_v, tgt_v, max_len=32, tokens=40)
    assert batches.pairs("train") == 60
    for _src, tgt_in, tgt_out in batches.batches["train"]:
        assert tgt_in[:, 0].eq(tgt_v.bos_id).all()
        assert torch.equal(tgt_in[:, 1:], tgt_out[:, :-1].masked_fill(
            tgt_out[:, :-1] == tgt_v.eos_id, 0))  # fmt: skip
        lengths = (tgt_out != 0).sum(1)
        assert lengths.max() - lengths.min() <= 1  # sorted by length
        assert tgt_out.numel() <= 40
    generator = torch.Generator().manual_seed(0)
    assert len(batches("train", generator)) == 3
    with pytest.raises(ValueError, match="split"):
        batches("test", generator)


def test_encode_source_pads_cuts_and_never_gives_an_empty_row() -> None:
    vocab = Vocab(["我", "会"])
    src = encode_source(["我会", "", "我会会会会"], vocab, max_len=3)
    assert src.tolist() == [[4, 5, 0], [1, 0, 0], [4, 5, 5]]
    assert pad_rows([[1], [2, 3]]).tolist() == [[1, 0], [2, 3]]
