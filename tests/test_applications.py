"""Chapter 6's application tools: monitoring and calibration, summaries and ROUGE,
continuations and repetition."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from zoo_helpers import tiny_ch05_encoder

from lm_course import zoo
from lm_course.applications import (
    CharTokenizer,
    adjusted_share,
    continuation_ids,
    continue_prompt,
    drifting_stream,
    expected_calibration_error,
    fit_temperature,
    lead,
    oracle_sentence,
    prompt_ids,
    reliability,
    repeated_ngram_share,
    rolling_share,
    rouge,
    split_sentences,
)
from lm_course.models.gpt import GPT, GPTConfig

# --------------------------------------------------------------------- monitoring


def test_rolling_share_is_the_mean_of_each_full_window() -> None:
    x = torch.tensor([1, 0, 1, 1, 0, 0, 1], dtype=torch.bool)
    got = rolling_share(x, 3)
    want = torch.tensor([x[i : i + 3].double().mean() for i in range(5)])
    assert got.shape == (5,) and torch.allclose(got, want.double())
    assert rolling_share(x, 7).tolist() == pytest.approx([4 / 7])
    with pytest.raises(ValueError, match="window"):
        rolling_share(x, 8)
    with pytest.raises(TypeError, match="tensor"):
        rolling_share([1, 0], 1)  # type: ignore[arg-type]


def test_rolling_share_of_a_long_stream_has_no_drift() -> None:
    # Cumulative sums in float64: 10^6 items keep the windows exact to 1e-9.
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1_000_000, generator=g) < 0.3
    got = rolling_share(x, 1000)
    assert abs(got[-1].item() - x[-1000:].double().mean().item()) < 1e-9


def test_adjusted_share_inverts_the_classifiers_error_rates() -> None:
    tpr, fpr = 0.8, 0.3
    for p in (0.0, 0.2, 0.55, 1.0):
        observed = tpr * p + fpr * (1 - p)
        assert adjusted_share(observed, tpr, fpr).item() == pytest.approx(p)
    assert adjusted_share(torch.tensor([0.0, 1.0]), tpr, fpr).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="tpr must be above fpr"):
        adjusted_share(0.5, 0.4, 0.4)
    with pytest.raises(ValueError, match="tpr"):
        adjusted_share(0.5, 1.5, 0.1)


def test_reliability_bins_are_half_open_on_the_left() -> None:
    conf = torch.tensor([0.0, 0.1, 0.15, 0.95, 1.0, 0.55])
    right = torch.tensor([1, 0, 1, 1, 0, 1])
    table = reliability(conf, right, n_bins=10)
    assert table.count.tolist() == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    exact = torch.tensor([0.0, 0.1, 0.15, 0.95, 1.0, 0.55], dtype=torch.float64)
    assert torch.equal(reliability(exact, right).count, table.count)
    assert table.count.dtype == torch.long and table.edges.shape == (11,)
    assert table.accuracy[0].item() == pytest.approx(0.5)  # 0.0 and 0.1: bin (0, .1]
    assert table.confidence[9].item() == pytest.approx(0.975)
    assert torch.isnan(table.accuracy[2]) and torch.isnan(table.confidence[2])


def test_expected_calibration_error_by_hand_and_edge_cases() -> None:
    conf = torch.tensor([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    right = torch.tensor([True, True, True, False, True, False])
    # bin (0.8, 0.9]: accuracy 0.75, confidence 0.9; bin (0.5, 0.6]: 0.5 vs 0.6.
    want = 4 / 6 * 0.15 + 2 / 6 * 0.1
    assert expected_calibration_error(conf, right) == pytest.approx(want)
    assert expected_calibration_error(torch.ones(5), torch.ones(5)) == 0.0
    assert expected_calibration_error(torch.ones(5), torch.zeros(5)) == 1.0
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error(torch.tensor([1.2]), torch.tensor([1]))
    with pytest.raises(ValueError, match="same shape"):
        expected_calibration_error(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="non-empty"):
        expected_calibration_error(torch.ones(0), torch.ones(0))


def test_expected_calibration_error_matches_a_direct_loop() -> None:
    g = torch.Generator().manual_seed(1)
    conf = 0.5 + 0.5 * torch.rand(5000, generator=g)
    right = torch.rand(5000, generator=g) < conf**2  # over-confident on purpose
    for n_bins in (1, 7, 15):
        total = 0.0
        for b in range(n_bins):
            low, high = b / n_bins, (b + 1) / n_bins
            inside = (conf > low) & (conf <= high)
            if inside.any():
                gap = right[inside].double().mean() - conf[inside].double().mean()
                total += inside.sum().item() / 5000 * abs(gap.item())
        assert expected_calibration_error(conf, right, n_bins) == pytest.approx(total)
    assert expected_calibration_error(conf, right) > 0.1


def test_fit_temperature_recovers_the_temperature_of_the_data() -> None:
    g = torch.Generator().manual_seed(0)
    base = 3 * torch.randn(20000, 2, generator=g)
    labels = torch.multinomial(F.softmax(base, -1), 1, generator=g).squeeze(1)
    # The model is over-confident: its logits are the true ones times 2.5.
    t = fit_temperature(2.5 * base, labels)
    assert t == pytest.approx(2.5, rel=0.05)
    assert fit_temperature(base, labels) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(base, labels[:3])
    with pytest.raises(ValueError, match="logits"):
        fit_temperature(base[:, 0], labels)


# ---------------------------------------------------------------------- summaries


def test_sentences_in_english_and_chinese() -> None:
    en = "We propose X. It works, e.g. on Y! Results in Fig. 3 are good? Yes 2 times."
    assert split_sentences(en) == [
        "We propose X.",
        "It works, e.g. on Y!",
        "Results in Fig. 3 are good?",
        "Yes 2 times.",
    ]
    zh = "采用修正的参数；建立了模型.仿真结果表明,误差为0.5%。方法有效！"
    assert split_sentences(zh, "zh") == [
        "采用修正的参数；",
        "建立了模型.",
        "仿真结果表明,误差为0.5%。",
        "方法有效！",
    ]
    assert lead(zh, "zh", 2) == "采用修正的参数；建立了模型."
    assert lead(en, "en") == "We propose X."
    assert split_sentences("  ") == []
    with pytest.raises(ValueError, match="lang"):
        split_sentences(en, "fr")


def test_rouge_is_the_rouge_score_package_with_a_character_tokenizer() -> None:
    assert rouge(["the cat sat"], ["the cat sat"]) == pytest.approx(
        {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    )
    # Stemming: "models" and "model" match.
    assert rouge(["models"], ["model"])["rouge1"] == 100.0
    # The default tokenizer deletes Chinese; the character tokenizer keeps it.
    assert CharTokenizer().tokenize("基于SOS方法的设计 2019") == [
        "基", "于", "sos", "方", "法", "的", "设", "计", "2019",
    ]  # fmt: skip
    score = rouge(["飞行器控制"], ["飞行器姿态控制"], lang="zh")
    precision, recall = 5 / 5, 5 / 7
    f1 = 2 * precision * recall / (precision + recall)
    assert score["rouge1"] == pytest.approx(100 * f1)
    assert rouge(["飞行器控制"], ["飞行器姿态控制"], lang="en")["rouge1"] == 0.0
    with pytest.raises(ValueError, match="references"):
        rouge(["a"], ["a", "b"])
    with pytest.raises(TypeError, match="lists"):
        rouge("a", "a")  # type: ignore[arg-type]


def test_oracle_sentence_picks_the_best_match() -> None:
    text = "We study cats. We propose a new loss for training dogs. It is fast."
    assert oracle_sentence(text, "a new loss for dogs") == (
        "We propose a new loss for training dogs."
    )
    assert oracle_sentence("", "x") == ""


# ------------------------------------------------------------------ continuations


def test_repeated_ngram_share() -> None:
    assert repeated_ngram_share(["a", "b", "c", "a", "b", "c"], 3) == 0.25
    assert repeated_ngram_share(["a", "b", "c", "d"], 2) == 0.0
    assert repeated_ngram_share(["x"] * 10, 1) == 0.9
    assert repeated_ngram_share([1, 2], 3) == 0.0
    with pytest.raises(TypeError, match="split"):
        repeated_ngram_share("a b a b", 2)  # type: ignore[arg-type]


class _Pieces:
    """A stand-in vocabulary: one id per character, eos = 0."""

    eos = 0

    def encode(self, text: str) -> list[int]:
        return [ord(c) % 60 + 1 for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(96 + i % 26) for i in ids if i != self.eos)


def test_prompt_ids_cut_the_end_of_the_prompt_and_keep_the_cue() -> None:
    v = _Pieces()
    assert prompt_ids(v, "abc", 10) == [0, *v.encode("abc")]
    ids = prompt_ids(v, "abcdefgh", 6, suffix="xy")
    assert ids == [0, *v.encode("abc"), *v.encode("xy")]
    with pytest.raises(ValueError, match="room"):
        prompt_ids(v, "abc", 3, suffix="xyz")


def test_continue_prompt_is_seeded_and_stops_at_eos() -> None:
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=64, block_size=32, n_layer=1, n_head=2, d_model=16)
    )
    v = _Pieces()
    a = continue_prompt(model, v, "hello", 8, samples=3, seed=1)  # type: ignore[arg-type]
    b = continue_prompt(model, v, "hello", 8, samples=3, seed=1)  # type: ignore[arg-type]
    c = continue_prompt(model, v, "hello", 8, samples=3, seed=2)  # type: ignore[arg-type]
    assert a == b and a != c and len(a) == 3
    greedy = continue_prompt(model, v, "hello", 8, samples=2, greedy=True)  # type: ignore[arg-type]
    assert greedy[0] == greedy[1]
    assert all(len(t) <= 8 for t in a)
    full = continuation_ids(model, v, "hello", 8, samples=2, stop_at_eos=False)  # type: ignore[arg-type]
    assert [len(row) for row in full] == [8, 8]
    model.lm_head = torch.nn.Linear(16, 64)  # eos is always the likeliest: stop at once
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.bias[0] = 5.0
    assert continue_prompt(model, v, "hi", 4, greedy=True) == [""]  # type: ignore[arg-type]


# ---------------------------------------------------------- the sentiment recipe


def test_sentiment_recipe_fine_tunes_the_chapter5_trunk(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lm_course.zoo.recipes import ch06_sentiment

    small = {"max_len": 32, "n_layer": 1, "n_head": 2, "d_model": 16, "dropout": 0.0}
    trunk = tiny_ch05_encoder(monkeypatch, shared_data, tmp_path, small)
    recipe = ch06_sentiment.SENTIMENT["cpu"]
    sentiment = dict(
        recipe.config, trunk=trunk.name, encoder=small, steps=3, max_len=32
    )
    tiny = zoo.register(
        dataclasses.replace(
            recipe, name="ch06-sentiment-test", config=sentiment, needs=(trunk.name,)
        ),
        replace=True,
    )
    assert ch06_sentiment.recipe_for("cpu").name == "ch06-sentiment"
    assert ch06_sentiment.recipe_for(torch.device("cuda")).needs == (
        "ch05-encoder-gpu",
    )
    vocab, model, record = ch06_sentiment.sentiment_classifier("cpu", tiny.name)
    assert record.history.steps[-1] == 3
    assert set(record.metrics) == {"val", "test"}
    assert 0.3 < record.metrics["test"] < 0.7  # three steps: about chance
    ids, keep = vocab.batch(["a gripping , funny film ."], max_len=32)
    logits, _ = model(ids, keep)
    assert logits.shape == (1, 2) and not model.training
    # The trunk started from the pretrained one: its embeddings are not the untrained
    # ones the recipe builds.
    pretrained, _ = zoo.load(trunk, device="cpu")
    moved = (model.trunk.tok_emb.weight - pretrained.tok_emb.weight).abs().max()
    assert 0 < moved.item() < 0.1
    again = ch06_sentiment.sentiment_classifier("cpu", tiny.name)
    for a, b in zip(model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    splits = ch06_sentiment.review_splits()
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == [8530, 1066, 1066]


def test_drifting_stream_has_the_shares_it_was_asked_for() -> None:
    labels = torch.tensor([1] * 560 + [0] * 506)
    shares = [0.6, 0.6, 0.35, 0.2, 0.35, 0.6]
    order = drifting_stream(labels, shares, 150, seed=3)
    assert order.shape == (900,) and order.dtype == torch.long
    assert len(set(order.tolist())) == 900  # each item at most once
    got = labels[order].view(6, 150).double().mean(1)
    assert got.tolist() == pytest.approx([round(s * 150) / 150 for s in shares])
    assert torch.equal(order, drifting_stream(labels, shares, 150, seed=3))
    with pytest.raises(ValueError, match="positives"):
        drifting_stream(labels, [1.0] * 4, 150)
    with pytest.raises(ValueError, match="shares"):
        drifting_stream(labels, [1.5], 10)
