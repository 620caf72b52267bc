"""Tests for the character, byte-level BPE and SentencePiece tokenizers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from lm_course.tokenizers import BPETokenizer, CharTokenizer, SentencePieceTokenizer


@pytest.fixture(scope="module")
def shakespeare(shared_data: Path) -> str:
    return (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def lunyu(shared_data: Path) -> str:
    chapters = json.loads(
        (shared_data / "chinese_classics" / "lunyu.json").read_text("utf-8")
    )
    return "\n".join(p for chapter in chapters for p in chapter["paragraphs"])


@pytest.fixture(scope="module")
def bpe(shakespeare: str) -> BPETokenizer:
    return BPETokenizer.train(shakespeare[:100_000], vocab_size=356)


MIXED = (
    "Hello, world!  Tabs\tand\nnewlines; 子曰：“学而时习之。” "
    "🙂👍🏽 café naïve 123_456 it's"
)


# ------------------------------------------------------------------------------
# characters


def test_char_roundtrip_and_sorted_vocab() -> None:
    tok = CharTokenizer.from_text("hello world")
    assert tok.chars == sorted(set("hello world"))
    assert tok.vocab_size == 8
    assert tok.encode("hold") == [3, 5, 4, 1]
    assert tok.decode(tok.encode("hello world")) == "hello world"
    assert tok.decode(torch.tensor([3, 5, 4, 1])) == "hold"
    assert tok.encode("") == []
    assert tok.decode([]) == ""


def test_char_chinese_and_emoji(lunyu: str) -> None:
    text = lunyu + " 🙂👍🏽"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text


def test_char_unknown_character_error() -> None:
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"character 'z' at position 2 .*unk='<unk>'"):
        tok.encode("abz")


def test_char_unk_option() -> None:
    tok = CharTokenizer.from_text("abc", unk="<unk>")
    assert tok.vocab_size == 4 and tok.unk_id == 3
    # The known characters keep the ids they have without unk.
    assert tok.encode("abc") == CharTokenizer.from_text("abc").encode("abc")
    assert tok.encode("axb") == [0, 3, 1]
    assert tok.decode([0, 3, 1]) == "a<unk>b"
    with pytest.raises(ValueError, match=r"unk='a' is also a character"):
        CharTokenizer.from_text("abc", unk="a")
    with pytest.raises(ValueError, match=r"unk='' must be a non-empty string"):
        CharTokenizer.from_text("abc", unk="")


def test_char_bad_inputs() -> None:
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(TypeError, match=r"text must be a str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(TypeError, match=r"text must be a str, got list"):
        CharTokenizer.from_text(["a", "b"])
    with pytest.raises(
        ValueError, match=r"ids\[1\]=7 is outside the vocabulary \[0, 3\)"
    ):
        tok.decode([0, 7])
    with pytest.raises(ValueError, match=r"ids\[0\]=-1 is outside"):
        tok.decode([-1])
    with pytest.raises(TypeError, match=r"ids\[0\]=1.0 is not an int"):
        tok.decode([1.0])
    with pytest.raises(TypeError, match=r"1-D integer tensor, got shape \(1, 2\)"):
        tok.decode(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=r"chars\[0\]='ab' is not a single character"):
        CharTokenizer(["ab"])


def test_char_save_load(tmp_path: Path) -> None:
    tok = CharTokenizer.from_text("héllo 世界", unk="<unk>")
    tok.save(tmp_path / "char.json")
    loaded = CharTokenizer.load(tmp_path / "char.json")
    assert loaded.itos == tok.itos and loaded.unk_id == tok.unk_id
    (tmp_path / "other.json").write_text('{"merges": []}')
    with pytest.raises(ValueError, match=r"not a CharTokenizer file"):
        CharTokenizer.load(tmp_path / "other.json")


# -------------------------------------------------------------------------------------
# BPE


def test_bpe_untrained_is_bytes() -> None:
    tok = BPETokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("aé") == [97, 0xC3, 0xA9]
    assert tok.encode("") == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "hello world",
        MIXED,
        "   leading and trailing   ",
        "\n\n\r\n",
        "👍🏽" * 5,
    ],
)
def test_bpe_roundtrip(bpe: BPETokenizer, text: str) -> None:
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_roundtrip_chinese(bpe: BPETokenizer, lunyu: str) -> None:
    # Trained on English, so Chinese is mostly raw bytes, but it must still round-trip.
    assert bpe.decode(bpe.encode(lunyu)) == lunyu
    zh = BPETokenizer.train(lunyu, vocab_size=300)
    ids = zh.encode(lunyu)
    assert zh.decode(ids) == lunyu
    assert len(ids) < len(lunyu.encode("utf-8"))


def test_bpe_merges_in_order(bpe: BPETokenizer) -> None:
    assert len(bpe.merges) == 100 and bpe.vocab_size == 356
    for step, ((a, b), new_id) in enumerate(bpe.merges):
        assert new_id == 256 + step
        assert a < new_id and b < new_id  # a merge only uses tokens that already exist
        assert bpe.vocab[new_id] == bpe.vocab[a] + bpe.vocab[b]


def test_bpe_first_merge_is_most_frequent_pair() -> None:
    text = "aaab " * 10 + "cd " * 3
    tok = BPETokenizer.train(text, vocab_size=257)
    # Pairs inside the chunks " aaab": (a, a) occurs twice per chunk, more than any
    # other.
    assert tok.merges == [((97, 97), 256)]


def test_bpe_reproducible(shakespeare: str, bpe: BPETokenizer) -> None:
    again = BPETokenizer.train(shakespeare[:100_000], vocab_size=356)
    assert again.merges == bpe.merges


def test_bpe_merges_stay_inside_words(bpe: BPETokenizer) -> None:
    for token in bpe.vocab.values():
        # A space can only start a token (or the token is all whitespace).
        assert b" " not in token.strip(b" ") or token.isspace()


def test_bpe_compresses_shakespeare(shakespeare: str, bpe: BPETokenizer) -> None:
    held_out = shakespeare[-50_000:]
    ids = bpe.encode(held_out)
    assert len(ids) < 0.7 * len(held_out.encode("utf-8"))
    assert bpe.decode(ids) == held_out


def test_bpe_training_is_fast(shakespeare: str) -> None:
    start = time.perf_counter()
    tok = BPETokenizer.train(shakespeare[:200_000], vocab_size=756)
    assert len(tok.merges) == 500
    assert time.perf_counter() - start < 15  # about 1 s on one laptop core


def test_bpe_tokens_shows_partial_bytes(bpe: BPETokenizer) -> None:
    assert "".join(bpe.tokens("the king")) == "the king"
    # "学" is three bytes that this English-trained tokenizer never merged.
    assert bpe.tokens("学") == ["<0xE5>", "<0xAD>", "<0xA6>"]
    # Bytes E5 AD A6: pairs (E5, AD) and (AD, A6) tie, and the smaller pair is merged
    # first.
    zh = BPETokenizer.train("学学学学", vocab_size=257)
    assert zh.tokens("学") == ["<0xE5>", "<0xAD><0xA6>"]


def test_bpe_verbose_prints_merges(capsys: pytest.CaptureFixture[str]) -> None:
    BPETokenizer.train("the the the", vocab_size=258, verbose=True)
    out = capsys.readouterr().out
    assert "merge 1/2" in out and "merge 2/2" in out


def test_bpe_stops_early_with_warning() -> None:
    with pytest.warns(
        UserWarning, match=r"stopped after 2 merges .*smaller vocab_size"
    ):
        tok = BPETokenizer.train("abc", vocab_size=300)
    assert tok.vocab_size == 258


def test_bpe_bad_inputs(bpe: BPETokenizer) -> None:
    with pytest.raises(
        ValueError, match=r"vocab_size must be an integer >= 256, got 100; a byte-level"
    ):
        BPETokenizer.train("abc", vocab_size=100)
    with pytest.raises(
        TypeError, match=r"vocab_size must be an integer >= 256, got 300.0"
    ):
        BPETokenizer.train("abc", vocab_size=300.0)
    with pytest.raises(TypeError, match=r"vocab_size must be .* got True \(bool\)"):
        BPETokenizer.train("abc", vocab_size=True)
    with pytest.raises(TypeError, match=r"vocab_size must be .* got None \(NoneType\)"):
        BPETokenizer.train("abc", vocab_size=None)
    with pytest.raises(TypeError, match=r"verbose must be True or False, got 'yes'"):
        BPETokenizer.train("abc", vocab_size=300, verbose="yes")
    with pytest.raises(TypeError, match=r"merges\[0\] must be \(\(a, b\), new_id\)"):
        BPETokenizer([(1, 2, 256)])
    with pytest.raises(TypeError, match=r"merges\[0\] ids must be an integer >= 0"):
        BPETokenizer([((1, 2.5), 256)])
    with pytest.raises(TypeError, match=r"text must be a str, got bytes"):
        BPETokenizer.train(b"abc", vocab_size=300)
    with pytest.raises(TypeError, match=r"text must be a str, got int"):
        bpe.encode(3)
    with pytest.raises(ValueError, match=r"position 1, a lone surrogate"):
        bpe.encode("a\ud800b")
    with pytest.raises(
        ValueError, match=r"ids\[0\]=356 is outside the vocabulary \[0, 356\)"
    ):
        bpe.decode([356])


def test_bpe_decode_partial_character(bpe: BPETokenizer) -> None:
    ids = bpe.encode("学")
    assert bpe.decode(ids[:1]) == "\ufffd"


def test_bpe_save_load(tmp_path: Path, bpe: BPETokenizer) -> None:
    bpe.save(tmp_path / "bpe.json")
    loaded = BPETokenizer.load(tmp_path / "bpe.json")
    assert loaded.merges == bpe.merges
    assert loaded.encode(MIXED) == bpe.encode(MIXED)

    data = json.loads((tmp_path / "bpe.json").read_text())
    data["merges"] = data["merges"][1:]  # new ids no longer start at 256
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"new ids must count up from 256"):
        BPETokenizer.load(tmp_path / "broken.json")
    data["pattern"] = "x"
    (tmp_path / "pattern.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"different pre-split pattern"):
        BPETokenizer.load(tmp_path / "pattern.json")
    (tmp_path / "char.json").write_text(
        json.dumps({"format": "lm_course.CharTokenizer"})
    )
    with pytest.raises(ValueError, match=r"not a BPETokenizer file"):
        BPETokenizer.load(tmp_path / "char.json")


# ---------------------------------------------------------------------------
# SentencePiece


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_spm_train_roundtrip(shakespeare: str, model_type: str) -> None:
    text = shakespeare[:30_000]
    tok = SentencePieceTokenizer.train(text, vocab_size=300, model_type=model_type)
    assert tok.vocab_size == 300
    ids = tok.encode(text)
    assert len(ids) < len(text)
    # Line breaks, double spaces and the start of lines all come back exactly.
    assert tok.decode(ids) == text
    assert tok.decode(torch.tensor(ids[:50])) == tok.decode(ids[:50])
    assert "".join(tok.pieces("First Citizen")).replace("▁", " ") == "First Citizen"
    assert tok.encode("") == []


def test_spm_deterministic(shakespeare: str) -> None:
    text = shakespeare[:30_000]
    a = SentencePieceTokenizer.train(text, vocab_size=300, model_type="unigram")
    b = SentencePieceTokenizer.train(text.splitlines(keepends=True), 300, "unigram")
    assert a.model_proto == b.model_proto


def test_spm_chinese_roundtrip(lunyu: str) -> None:
    tok = SentencePieceTokenizer.train(lunyu, vocab_size=1500, model_type="unigram")
    ids = tok.encode(lunyu)
    assert (
        tok.decode(ids) == lunyu
    )  # identity normalisation keeps full-width punctuation
    assert len(ids) < len(lunyu)


def test_spm_save_load(tmp_path: Path, shakespeare: str) -> None:
    tok = SentencePieceTokenizer.train(
        shakespeare[:30_000], 300, "bpe", model_dir=tmp_path, prefix="shakes"
    )
    path = tmp_path / "shakes.model"
    assert path.is_file()
    loaded = SentencePieceTokenizer.load(path)
    assert loaded.encode("To be, or not to be") == tok.encode("To be, or not to be")
    tok.save(tmp_path / "copy.model")
    assert SentencePieceTokenizer.load(tmp_path / "copy.model").vocab_size == 300
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"not a SentencePiece model file"):
        SentencePieceTokenizer.load(tmp_path / "junk.model")
    with pytest.raises(FileNotFoundError, match=r"no SentencePiece model at"):
        SentencePieceTokenizer.load(tmp_path / "missing.model")


def test_spm_bad_inputs(shakespeare: str) -> None:
    with pytest.raises(
        ValueError, match=r"model_type must be one of \('bpe', 'unigram'\), got 'word'"
    ):
        SentencePieceTokenizer.train("abc", 300, model_type="word")
    with pytest.raises(
        ValueError, match=r"vocab_size=300 is too large .*at most \d+ pieces"
    ):
        SentencePieceTokenizer.train("hello world\n" * 10, vocab_size=300)
    with pytest.raises(
        TypeError, match=r"vocab_size must be an integer >= 5, got '300'"
    ):
        SentencePieceTokenizer.train("abc", "300")
    with pytest.raises(ValueError, match=r"vocab_size must be .* got 2; the special"):
        SentencePieceTokenizer.train("abc", 2)
    with pytest.raises(ValueError, match=r"text is empty"):
        SentencePieceTokenizer.train("\n\n", 300)
    with pytest.raises(TypeError, match=r"text\[1\] is a int, not a str"):
        SentencePieceTokenizer.train(["abc", 3], 300)
    with pytest.raises(
        ValueError, match=r"character_coverage must be a finite number > 0 and <= 1"
    ):
        SentencePieceTokenizer.train("abc", 300, character_coverage=1.5)
    with pytest.raises(TypeError, match=r"byte_fallback must be True or False, got 1"):
        SentencePieceTokenizer.train("abc", 300, byte_fallback=1)
    tok = SentencePieceTokenizer.train(shakespeare[:30_000], 300)
    with pytest.raises(
        ValueError, match=r"ids\[0\]=300 is outside the vocabulary \[0, 300\)"
    ):
        tok.decode([300])
    with pytest.raises(TypeError, match=r"text must be a str, got list"):
        tok.encode(["abc"])


def test_sentencepiece_keeps_long_lines_and_explains_small_vocab(shared_data) -> None:
    """A chapter of the Analects is longer than SentencePiece's default line limit."""
    chapters = [
        "".join(c["paragraphs"])
        for c in json.loads(
            (shared_data / "chinese_classics/lunyu.json").read_text("utf-8")
        )
    ]
    longest = max(chapters, key=lambda c: len(c.encode("utf-8")))
    assert len(longest.encode("utf-8")) > 4192
    tok = SentencePieceTokenizer.train(chapters, 1600, "unigram")
    assert "<unk>" not in tok.pieces(longest)
    with pytest.raises(
        ValueError, match=r"smaller than the number of distinct characters.*\(\d{4}\)"
    ):
        SentencePieceTokenizer.train(chapters, 100)
