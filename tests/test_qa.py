"""Extractive question answering: offsets, windows, the span head, decoding, the
word-overlap baseline, SQuAD scoring and the ``ch06-qa-en`` recipe at a tiny size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from zoo_helpers import tiny_ch05_encoder

from lm_course import zoo
from lm_course.applications.qa import (
    SpanBatches,
    SpanHead,
    SpanModel,
    best_spans,
    overlap_answer,
    piece_spans,
    predict,
    span_loss,
    split_by_article,
    squad_scores,
    windows,
)
from lm_course.data import xquad
from lm_course.data.loaders import QAExample
from lm_course.models.encoder import EncoderConfig, TransformerEncoder
from lm_course.pretraining.vocab import Vocab

SPACE = "\u2581"


@pytest.fixture(scope="module")
def english(shared_data: Path) -> list[QAExample]:
    import os

    old = os.environ.get("LM_COURSE_DATA")
    os.environ["LM_COURSE_DATA"] = str(shared_data)
    try:
        return xquad("en")
    finally:
        if old is None:
            del os.environ["LM_COURSE_DATA"]
        else:
            os.environ["LM_COURSE_DATA"] = old


@pytest.fixture(scope="module")
def vocab(english: list[QAExample]) -> Vocab:
    contexts = sorted({example.context for example in english})
    return Vocab.train(contexts, 600)


def example(context: str, question: str, answer: str) -> QAExample:
    return QAExample("q", "t", context, question, (answer,), (context.index(answer),))


# ------------------------------------------------------------------ offsets


def test_piece_offsets_map_back_to_the_context_exactly(
    vocab: Vocab, english: list[QAExample]
) -> None:
    processor = vocab.tokenizer.processor
    exact = total = 0
    for context in sorted({e.context for e in english})[:40]:
        ids, spans = piece_spans(vocab, context)
        assert ids == vocab.encode(context)  # the pieces pretraining saw
        assert len(spans) == len(ids)
        for i, (start, end) in zip(ids, spans, strict=True):
            surface = processor.id_to_piece(i).replace(SPACE, "")
            text = context[start:end]
            assert text and not text[0].isspace() and not text[-1].isspace()
            if surface:  # a bare "▁" piece gets the word that follows it
                total += 1
                exact += text.lower() == surface
    assert exact / total > 0.99  # the rest: unknown characters (the whole word)


def test_piece_offsets_of_an_unknown_character_fall_back_to_the_word(
    vocab: Vocab,
) -> None:
    text = "the 漢字x word"
    ids, spans = piece_spans(vocab, text)
    pieces = [text[a:b] for a, b in spans]
    assert pieces[0] == "the" and "word".endswith(pieces[-1])
    assert "漢字x" in pieces  # every piece of the unknown word spans all of it


def test_windows_label_the_answer_and_cover_long_contexts(
    vocab: Vocab, english: list[QAExample]
) -> None:
    rows = windows(vocab, english[:200], max_len=64, stride=20)
    assert all(len(row.ids) <= 64 and len(row.spans) == len(row.ids) for row in rows)
    assert len({row.example for row in rows}) == 200
    labelled = [row for row in rows if row.start > 0]
    assert len({row.example for row in labelled}) >= 195  # long answers may not fit
    for row in labelled:
        e = english[row.example]
        first, last = row.spans[row.start], row.spans[row.end]
        assert first is not None and last is not None and row.start <= row.end
        got = e.context[first[0] : last[1]]
        assert squad_scores([got], [e])["exact_match"] == 100.0, (got, e.answers[0])
    for row in rows:  # question and eos positions are never part of an answer
        assert row.ids[0] == vocab.eos and row.spans[0] is None
        assert row.spans[-1] is None and row.ids[-1] == vocab.eos


def test_windows_reject_bad_arguments_by_name(vocab: Vocab) -> None:
    one = [example("a b c", "b?", "c")]
    with pytest.raises(ValueError, match="max_len"):
        windows(vocab, one, max_len=20, stride=5, max_question=32)
    with pytest.raises(ValueError, match="stride"):
        windows(vocab, one, max_len=64, stride=0)
    with pytest.raises(TypeError, match="examples\\[0\\]"):
        windows(vocab, ["not an example"], max_len=64, stride=5)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="vocab"):
        piece_spans("vocab", "text")  # type: ignore[arg-type]


# ------------------------------------------------------------------ head, decoding


def tiny_trunk(vocab: Vocab, max_len: int = 64) -> TransformerEncoder:
    torch.manual_seed(0)
    return TransformerEncoder(
        EncoderConfig(
            vocab_size=len(vocab),
            pad_id=vocab.pad,
            max_len=max_len,
            n_layer=1,
            n_head=2,
            d_model=16,
            dropout=0.0,
        )
    )


def test_span_head_shapes_and_padding(vocab: Vocab, english: list[QAExample]) -> None:
    head = SpanHead(16)
    start, end = head(torch.randn(3, 7, 16))
    assert start.shape == end.shape == (3, 7)
    with pytest.raises(ValueError, match="hidden"):
        head(torch.randn(3, 7, 8))
    with pytest.raises(ValueError, match="d_model"):
        SpanHead(0)
    with pytest.raises(TypeError, match="trunk"):
        SpanModel("encoder")  # type: ignore[arg-type]
    model = SpanModel(tiny_trunk(vocab))
    rows = windows(vocab, english[:8], max_len=64, stride=20)
    batches = SpanBatches(vocab, {"train": rows}, batch_size=5)
    ids, keep, starts, ends = batches("train", torch.Generator().manual_seed(0))
    start, end = model(ids, keep)
    assert start.shape == end.shape == ids.shape
    assert torch.isinf(start[~keep]).all() and torch.isfinite(start[keep]).all()
    loss = span_loss(model, (ids, keep, starts, ends))
    assert loss.dim() == 0 and loss.item() > 0
    with pytest.raises(ValueError, match="split"):
        batches("test", torch.Generator())


def test_best_span_respects_order_and_max_length() -> None:
    start = torch.tensor([[0.0, 5.0, 0.0, 0.0, 10.0, 0.0]])
    end = torch.tensor([[0.0, 0.0, 9.0, 0.0, 0.0, 0.0]])
    allowed = torch.ones(1, 6, dtype=torch.bool)
    # the best pair (4, 2) has end before start: the best valid span is (1, 2)
    s, e, score = best_spans(start, end, allowed, max_answer=30)
    assert (s.item(), e.item(), score.item()) == (1, 2, 14.0)
    s, e, _ = best_spans(start, end, allowed, max_answer=1)  # single pieces only
    assert s.item() == e.item() == 4
    allowed[0, 1] = False
    s, e, _ = best_spans(start, end, allowed, max_answer=30)
    assert s.item() >= 2 and e.item() >= s.item()
    torch.manual_seed(0)
    a, b = torch.randn(50, 20), torch.randn(50, 20)
    keep = torch.rand(50, 20) > 0.3
    s, e, score = best_spans(a, b, keep, max_answer=4)
    assert ((e >= s) & (e - s < 4)).all()
    for r in range(50):  # brute force agrees
        pairs = [
            (a[r, i] + b[r, j]).item()
            for i in range(20)
            for j in range(i, min(i + 4, 20))
            if keep[r, i] and keep[r, j]
        ]
        assert score[r].item() == pytest.approx(max(pairs))
    none = best_spans(a[:1], b[:1], torch.zeros(1, 20, dtype=torch.bool), 3)
    assert none[2].item() == float("-inf")
    with pytest.raises(ValueError, match="max_answer"):
        best_spans(a, b, keep, max_answer=0)
    with pytest.raises(ValueError, match="start_logits"):
        best_spans(a[0], b[0], keep[0], 3)
    with pytest.raises(ValueError, match="one shape"):
        best_spans(a, b[:, :5], keep, 3)


def test_predict_returns_context_text(vocab: Vocab, english: list[QAExample]) -> None:
    model = SpanModel(tiny_trunk(vocab))
    some = english[:6]
    answers = predict(model, vocab, some, windows(vocab, some, 64, 20), max_answer=5)
    assert len(answers) == 6
    for text, e in zip(answers, some, strict=True):
        assert text and text in e.context and len(text.split()) <= 5


# ------------------------------------------------------------------ baseline, scores


def test_overlap_baseline_on_a_hand_example() -> None:
    context = (
        "Paris is large. The Eiffel Tower was finished in 1889 by Gustave Eiffel. "
        "It is tall."
    )
    question = "When was the Eiffel Tower finished?"
    # sentence 2 shares eiffel, tower, was, finished, the; runs not in the question:
    # "in 1889 by Gustave" (cut to 4 words) next to "finished"
    assert overlap_answer(question, context) == "in 1889 by Gustave"
    assert overlap_answer(question, context, max_words=2) == "in 1889"
    assert overlap_answer("Who built it?", "") == ""
    with pytest.raises(ValueError, match="max_words"):
        overlap_answer(question, context, max_words=0)
    with pytest.raises(TypeError, match="question"):
        overlap_answer(None, context)  # type: ignore[arg-type]


def test_overlap_baseline_on_chinese_characters() -> None:
    context = "北京是首都。长城建于明朝。"
    assert (
        overlap_answer("长城建于什么时候？", context, max_words=2, chars=True) == "明朝"
    )


def test_scores_follow_the_official_squad_definitions() -> None:
    gold = [example("x The Denver Broncos won.", "who?", "Denver Broncos")]
    # normalisation: case, articles and punctuation do not matter
    assert squad_scores(["the denver broncos!"], gold) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }
    # F1: one shared word of 2 predicted and 2 gold -> P = R = 1/2 -> F1 = 50
    assert squad_scores(["Denver Nuggets"], gold) == {"exact_match": 0.0, "f1": 50.0}
    assert squad_scores([""], gold)["f1"] == 0.0
    # the best of several references counts; averaged over questions
    two = QAExample("q", "t", "a b c", "?", ("a b", "c"), (0, 4))
    both = squad_scores(["c", "zzz"], [two, gold[0]])
    assert both == {"exact_match": 50.0, "f1": 50.0}
    # characters as words for Chinese: 2 of 3 predicted, 2 of 2 gold -> F1 80
    zh = QAExample("q", "t", "明朝初年", "?", ("明朝",), (0,))
    assert squad_scores(["明朝初"], [zh], chars=True)["f1"] == pytest.approx(80.0)
    assert squad_scores(["明朝初"], [zh])["f1"] == 0.0  # one "word" each
    with pytest.raises(ValueError, match="predictions"):
        squad_scores([], [])
    with pytest.raises(TypeError, match="predictions\\[0\\]"):
        squad_scores([3], gold)  # type: ignore[list-item]


def test_split_by_article_shares_no_context(english: list[QAExample]) -> None:
    train, test = split_by_article(english, 12, seed=0)
    assert len(train) + len(test) == 1190
    assert len({e.title for e in test}) == 12
    assert not {e.context for e in train} & {e.context for e in test}
    assert split_by_article(english, 12, seed=0) == (train, test)
    with pytest.raises(ValueError, match="n_test"):
        split_by_article(english, 48)


# ------------------------------------------------------------------ the recipe


def test_qa_recipe_trains_and_scores_at_a_tiny_size(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lm_course.zoo.recipes import ch06_qa

    small = {"max_len": 48, "n_layer": 1, "n_head": 2, "d_model": 16, "dropout": 0.0}
    trunk = tiny_ch05_encoder(monkeypatch, shared_data, tmp_path, small)
    recipe = ch06_qa.QA["ch06-qa-en"]
    qa = dict(recipe.config, trunk=trunk.name, encoder=small, steps=3)
    qa.update(stride=8, max_question=16, questions=40)
    tiny = zoo.register(
        dataclasses.replace(
            recipe, name="ch06-qa-test", config=qa, needs=(trunk.name,)
        ),
        replace=True,
    )
    assert ch06_qa.recipe_for("cpu").name == "ch06-qa-en"
    assert ch06_qa.recipe_for("cpu", "scratch").name == "ch06-qa-en-scratch"
    assert ch06_qa.recipe_for(torch.device("cuda")).needs == ("ch05-encoder-gpu",)
    with pytest.raises(ValueError, match="init"):
        ch06_qa.recipe_for("cpu", "random")
    vocab, model, record = ch06_qa.qa_model("cpu", tiny.name)
    assert record.history.steps[-1] == 3 and not model.training
    assert set(record.metrics) == {"exact_match", "f1", "train_windows"}
    assert 0 <= record.metrics["f1"] < 20  # three steps: next to nothing
    again = ch06_qa.qa_model("cpu", tiny.name)
    for a, b in zip(model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
