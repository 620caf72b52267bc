"""Each model checks its call at its boundary: ids, targets, caches and states.

Targets are checked like inputs: a float target used to be truncated to an integer
silently, and an id out of range raised ``IndexError`` inside the loss (a device-side
assert on a GPU).
"""

import pytest
import torch

from lm_course.models import (
    GPT,
    EncoderConfig,
    EncoderDecoder,
    GPTConfig,
    KVCache,
    LSTMConfig,
    LSTMLanguageModel,
    Seq2SeqConfig,
    SequenceClassifier,
    TransformerEncoder,
)

V = 11
IDX = torch.tensor([[1, 2, 3], [4, 5, 6]])


def gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    settings = dict(vocab_size=V, block_size=8, n_layer=2, n_head=2, d_model=8)
    return GPT(GPTConfig(**{**settings, **overrides}))


def lstm() -> LSTMLanguageModel:
    torch.manual_seed(0)
    return LSTMLanguageModel(LSTMConfig(V, d_embed=4, d_hidden=4))


def encoder() -> TransformerEncoder:
    torch.manual_seed(0)
    return TransformerEncoder(
        EncoderConfig(V, max_len=8, n_layer=1, n_head=2, d_model=8)
    )


def seq2seq() -> EncoderDecoder:
    torch.manual_seed(0)
    return EncoderDecoder(
        Seq2SeqConfig(V, V, max_len=8, n_layer=1, n_head=2, d_model=8)
    )


# Each model called with (idx, targets), whatever its own argument names.
CALLS = {
    "gpt": lambda targets: gpt()(IDX, targets),
    "lstm": lambda targets: lstm()(IDX, targets),
    "encoder": lambda targets: encoder()(IDX, targets),
    "seq2seq": lambda targets: seq2seq()(IDX, IDX, targets),
}
NAMES = {
    "gpt": "targets",
    "lstm": "targets",
    "encoder": "targets",
    "seq2seq": "tgt_out",
}


@pytest.mark.parametrize("model", CALLS)
@pytest.mark.parametrize(
    ("targets", "error", "message"),
    [
        (IDX + 0.7, TypeError, r"must hold integer class ids.*float32.*\.long\(\)"),
        (IDX.bool(), TypeError, r"must hold integer class ids.*torch.bool"),
        (IDX.tolist(), TypeError, r"must be a tensor of class ids"),
        (IDX[:, :2], ValueError, r"must have shape \(2, 3\), got \(2, 2\)"),
        (IDX.flatten(), ValueError, r"must have shape \(2, 3\), got \(6,\)"),
        (IDX + V, ValueError, r"contains 17, outside \[0, 10\]"),
        (IDX - 5, ValueError, r"contains -4, outside \[0, 10\] \(use -100"),
    ],
)
def test_targets_are_checked_at_every_model_boundary(model, targets, error, message):
    with pytest.raises(error, match=f"{NAMES[model]} {message}"):
        CALLS[model](targets)


def test_classifier_labels_are_checked():
    classifier = SequenceClassifier(encoder(), n_classes=3, dropout=0.0)
    classifier(IDX, labels=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"labels contains 3, outside \[0, 2\]"):
        classifier(IDX, labels=torch.tensor([0, 3]))
    with pytest.raises(TypeError, match=r"labels must hold integer class ids.*float"):
        classifier(IDX, labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\), got \(2, 1"):
        classifier(IDX, labels=torch.tensor([[0], [1]]))


def test_seq2seq_rows_and_masks_must_match():
    model = seq2seq()
    with pytest.raises(ValueError, match=r"tgt_in has 1 rows but the source has 2"):
        model(IDX, IDX[:1])
    with pytest.raises(ValueError, match=r"src_mask must be lengths \(batch,\) = \(2,"):
        model(IDX, IDX, src_mask=torch.tensor([3, 2, 1]))
    memory = model.encode(IDX)
    with pytest.raises(ValueError, match=r"memory must have shape .*d_model=8"):
        model.decode(IDX, memory[..., :4], torch.ones(2, 1, 1, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"src_mask must be a boolean tensor"):
        model.decode(IDX, memory, torch.ones(2, 1, 1, 3))


# ---------------------------------------------------------------------------- caches


@pytest.mark.parametrize(
    ("other", "needs"),
    [
        (dict(n_layer=3), r"\(2, 2, 2, any, 4\)"),
        (dict(n_head=4), r"\(2, 2, 2, any, 4\)"),
        (dict(d_model=16), r"\(2, 2, 2, any, 4\)"),
    ],
)
def test_a_cache_from_another_model_is_refused(other, needs):
    cache = gpt(**other).make_cache(2)
    with pytest.raises(ValueError, match=rf"cache does not fit: .*needs {needs}"):
        gpt()(IDX, cache=cache)


def test_a_cache_for_another_batch_dtype_or_device_is_refused():
    model = gpt()
    with pytest.raises(ValueError, match=r"needs \(2, 3, 2, any, 4\).*make_cache"):
        model(torch.zeros(3, 2, dtype=torch.long), cache=model.make_cache(2))
    with pytest.raises(
        ValueError, match=r"cache holds torch.float32 on cpu, .*float64"
    ):
        gpt().double()(IDX, cache=model.make_cache(2))
    on_meta = KVCache(2, 2, 2, 8, 4, device="meta")
    with pytest.raises(ValueError, match=r"cache holds torch.float32 on meta"):
        model(IDX, cache=on_meta)
    with pytest.raises(
        TypeError, match=r"cache must be a KVCache from model.make_cache"
    ):
        model(IDX, cache=lstm().init_state(2))


def test_cached_and_uncached_float64_models_agree():
    model = gpt().double()
    full, _ = model(IDX)
    cache = model.make_cache(2)
    first, _ = model(IDX[:, :2], cache=cache)
    last, _ = model(IDX[:, 2:], cache=cache)
    torch.testing.assert_close(torch.cat([first, last], dim=1), full)


# ---------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("make", [gpt, lstm, encoder], ids=["gpt", "lstm", "encoder"])
def test_ids_on_another_device_or_an_empty_batch(make):
    model = make()
    with pytest.raises(ValueError, match=r"idx is on meta but the model is on cpu"):
        model(IDX.to("meta"))
    with pytest.raises(ValueError, match=r"at least one row and one token.*\(0, 3\)"):
        model(IDX[:0])


def test_lstm_state_of_another_dtype_is_refused():
    model = lstm()
    state = tuple(t.double() for t in model.init_state(2))
    with pytest.raises(ValueError, match=r"state h is torch.float64 on cpu, but the"):
        model(IDX, state=state)
