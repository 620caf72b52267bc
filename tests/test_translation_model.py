"""The translator on an untrained model: translate, score, cross-attention maps,
and the attention plot (with and without a Chinese font)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from lm_course.models.seq2seq import EncoderDecoder, Seq2SeqConfig
from lm_course.translation import plots
from lm_course.translation.translator import Translator, cross_attention
from lm_course.translation.vocab import Vocab


@pytest.fixture
def translator() -> Translator:
    src = Vocab(list("我不会说法语你好。"))
    tgt = Vocab(["I", "do", "n't", "speak", "French", ".", "Hello"])
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        src_vocab_size=len(src), tgt_vocab_size=len(tgt), max_len=16, n_layer=2,
        n_head=2, d_model=16, dropout=0.0,
    )  # fmt: skip
    return Translator(EncoderDecoder(config), src, tgt, batch_size=2)


def test_translate_keeps_order_and_empty_lines_in_small_batches(translator) -> None:
    sentences = ["我不会说法语。", "", "你好。", "   ", "我不會說法語。", "龘"]
    out = translator.translate(sentences, beam_size=2)
    assert len(out) == 6 and out[1] == out[3] == ""
    assert out[0] == out[4]  # traditional input is simplified first
    alone = [translator.translate([s], beam_size=2)[0] for s in sentences]
    assert out == alone


def test_score_is_the_total_log_probability(translator) -> None:
    (a,) = translator.score(["你好。"], ["Hello ."])
    (b,) = translator.score(["你好。"], ["Hello . Hello ."])
    assert a < 0 and b < a  # more words, more negative log-probabilities added
    # Equal to the sum of the per-step log-probabilities of a teacher-forced pass.
    v = translator.tgt_vocab
    tgt = torch.tensor([[v.bos_id, v.stoi["Hello"], v.stoi["."]]])
    logits, _ = translator.model(translator.encode(["你好。"]), tgt)
    logp = torch.log_softmax(logits[0], -1)
    expected = logp[0, v.stoi["Hello"]] + logp[1, v.stoi["."]] + logp[2, v.eos_id]
    assert a == pytest.approx(expected.item(), abs=1e-5)
    with pytest.raises(ValueError, match="one translation per source"):
        translator.score(["你好。"], [])


def test_cross_attention_rows_are_distributions(translator) -> None:
    weights = cross_attention(translator, "我不会说法语。", "I do n't speak French .")
    assert weights.shape == (2, 2, 7, 7)  # layers, heads, 6 words + EOS, 7 characters
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 7), atol=1e-5)
    layer = translator.model.decoder[0].cross_attn
    assert layer.keep_weights is False and layer.last_weights is None  # cleaned up


def test_plot_uses_characters_with_a_font_and_positions_without(
    translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = torch.full((3, 2), 0.5)
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    ax = plots.plot_cross_attention(weights, ["你", "好"], ["Hi", ".", "<eos>"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    plt.close("all")
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")
    ax = plots.plot_cross_attention(weights, ["你", "好"], ["Hi", ".", "<eos>"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["你", "好"]
    with pytest.raises(ValueError, match="target tokens, source tokens"):
        plots.plot_cross_attention(weights.T, ["你", "好"], ["Hi", ".", "<eos>"])
    plt.close("all")
    assert plots.cjk_font() is None or isinstance(plots.cjk_font(), str)
