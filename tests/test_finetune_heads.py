"""Classification heads, freezing and the linear baselines on their own."""

from __future__ import annotations

import pytest
import torch

from lm_course.finetune import (
    BagOfWords,
    Classifier,
    count_parameters,
    fit_logistic_regression,
    layer_group,
    pool,
    relative_change,
    snapshot,
    train_only,
)
from lm_course.models.encoder import EncoderConfig, TransformerEncoder
from lm_course.models.gpt import GPT, GPTConfig


def test_gpt_encode_is_what_its_output_layer_reads() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(40, 12, n_layer=2, n_head=2, d_model=16)).eval()
    ids = torch.randint(0, 40, (3, 9))
    hidden = model.encode(ids)
    assert hidden.shape == (3, 9, 16)
    assert torch.allclose(model.lm_head(hidden), model(ids)[0], atol=1e-6)
    with pytest.raises(ValueError, match="block_size"):
        model.encode(torch.zeros(1, 13, dtype=torch.long))


def test_pooling_ignores_padding_and_picks_first_or_last_real_token() -> None:
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    hidden[0, 2:] = float("nan")  # padding may hold anything
    keep = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    mean = pool(hidden, keep, "mean")
    assert torch.allclose(mean[0], hidden[0, :2].mean(0))
    assert torch.allclose(mean[1], hidden[1].mean(0))
    assert torch.equal(pool(hidden, keep, "first"), hidden[:, 0])
    assert torch.equal(
        pool(hidden, keep, "last"), torch.stack([hidden[0, 1], hidden[1, 3]])
    )
    with pytest.raises(ValueError, match="how"):
        pool(hidden, keep, "max")


def test_a_causal_trunks_real_tokens_do_not_see_the_padding() -> None:
    torch.manual_seed(0)
    model = Classifier(GPT(GPTConfig(30, 10, n_layer=1, n_head=2, d_model=8)), 3)
    model.eval()
    short = torch.tensor([[4, 5, 6]])
    padded = torch.tensor([[4, 5, 6, 0, 0]])
    one = model(short, torch.ones_like(short, dtype=torch.bool))[0]
    two = model(padded, padded != 0)[0]
    assert torch.allclose(one, two, atol=1e-6)


def test_classifier_loss_labels_and_arguments_are_checked() -> None:
    torch.manual_seed(0)
    trunk = TransformerEncoder(EncoderConfig(30, 10, n_layer=1, n_head=2, d_model=8))
    model = Classifier(trunk, 2)
    ids = torch.randint(1, 30, (4, 6))
    logits, loss = model(ids, ids != 0, torch.tensor([0, 1, 1, 0]))
    assert logits.shape == (4, 2) and loss.dim() == 0
    with pytest.raises(ValueError, match="labels"):
        model(ids, ids != 0, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(TypeError, match="TransformerEncoder or a GPT"):
        Classifier(torch.nn.Linear(2, 2), 2)
    with pytest.raises(ValueError, match="pooling"):
        Classifier(trunk, 2, pooling="max")


def test_train_only_counts_and_relative_change() -> None:
    torch.manual_seed(0)
    model = Classifier(
        TransformerEncoder(EncoderConfig(30, 10, n_layer=2, n_head=2, d_model=8)), 2
    )
    train_only(model, model.head)
    trainable, total = count_parameters(model)
    assert trainable == 8 * 2 + 2 and total > 1000
    before = snapshot(model)
    with torch.no_grad():
        model.trunk.blocks[1].mlp.fc.weight.mul_(2.0)
    change = relative_change(before, model)
    assert change["embeddings"] == 0.0 and change["block 0"] == 0.0
    assert 0.0 < change["block 1"] < 1.0
    assert layer_group("trunk.blocks.3.attn.qkv.weight") == "block 3"
    assert layer_group("encoder.pos_emb.weight") == "embeddings"
    with pytest.raises(TypeError, match="modules or parameters"):
        train_only(model, "head")


def test_bag_of_words_logistic_regression_learns_words_and_pairs() -> None:
    texts = ["good film", "not good film", "bad film", "not bad film"] * 10
    labels = torch.tensor([1, 0, 0, 1] * 10)
    bow = BagOfWords(texts, min_count=2)
    assert "not good" in bow.index and "film" in bow.index
    ids, offsets = bow.bags(["good good film", "unknown words"])
    assert offsets.tolist() == [0, 3] and len(ids) == 3  # distinct features only
    model = fit_logistic_regression(bow.bags(texts), labels, len(bow), l2=1e-4)
    predicted = model(bow.bags(texts)).argmax(-1)
    assert torch.equal(predicted, labels)  # the pairs make it separable
    unigrams = BagOfWords(texts, bigrams=False)
    flat = fit_logistic_regression(unigrams.bags(texts), labels, len(unigrams))
    assert (flat(unigrams.bags(texts)).argmax(-1) == labels).float().mean() < 1.0


def test_dense_logistic_regression_separates_separable_points() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 5)
    labels = (x[:, 0] - x[:, 2] > 0).long()
    model = fit_logistic_regression(x, labels, 5, l2=1e-4)
    assert (model(x).argmax(-1) == labels).float().mean() > 0.97
    with pytest.raises(TypeError, match="x must be"):
        fit_logistic_regression(x[:, 0], labels, 5)


# ------------------------------------------------------------------ prompting


def test_a_few_shot_prompt_ends_where_the_label_starts() -> None:
    from lm_course.finetune.prompting import few_shot_prompt

    prompt = few_shot_prompt([("great .", "positive"), ("dull .", "negative")], "fun .")
    assert prompt == (
        "review: great .\nsentiment: positive\n"
        "review: dull .\nsentiment: negative\n"
        "review: fun .\nsentiment:"
    )
    assert few_shot_prompt([], "fun .") == "review: fun .\nsentiment:"
    with pytest.raises(ValueError, match="template"):
        few_shot_prompt([], "x", template="{text}")


def test_option_logprobs_sum_the_log_probabilities_of_each_options_tokens() -> None:
    from lm_course.finetune.prompting import option_logprobs
    from lm_course.pretraining import Vocab

    vocab = Vocab.train(["review: a fine film\nsentiment: positive negative"] * 30, 24)
    torch.manual_seed(0)
    model = GPT(GPTConfig(len(vocab), 8, n_layer=1, n_head=1, d_model=8)).eval()
    prompt, options = "a fine film\nsentiment:", [" positive", " negative"]
    scores = option_logprobs(model, vocab, prompt, options)
    assert scores.shape == (2,)
    for score, option in zip(scores, options):
        ids = [vocab.eos, *vocab.encode(prompt), *vocab.encode(option)][-9:]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids[:-1]]))[0][0], -1)
        n = len(vocab.encode(option))
        expected = sum(
            logp[i, ids[i + 1]] for i in range(len(ids) - 1 - n, len(ids) - 1)
        )
        assert score.item() == pytest.approx(float(expected), abs=1e-5)
    with pytest.raises(TypeError, match="options"):
        option_logprobs(model, vocab, prompt, " positive")
