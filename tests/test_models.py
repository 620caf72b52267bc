"""Tests for the course's Transformers: GPT, the MLM encoder, the encoder-decoder."""

import math

import pytest
import torch

from lm_course.models.encoder import (
    EncoderConfig,
    SequenceClassifier,
    TransformerEncoder,
    mask_tokens,
)
from lm_course.models.gpt import GPT, POSITIONAL_KINDS, GPTConfig, KVCache
from lm_course.models.seq2seq import EncoderDecoder, Seq2SeqConfig, greedy_decode

VOCAB = 23


def tiny_gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    settings = dict(vocab_size=VOCAB, block_size=12, n_layer=2, n_head=2, d_model=16)
    return GPT(GPTConfig(**{**settings, **overrides}))


VARIANTS = [
    {"positional": kind, "window": window, "attention": attention}
    for kind in POSITIONAL_KINDS
    for window in (None, 3)
    for attention in ("sdpa", "manual")
]


def variant_id(v: dict) -> str:
    return f"{v['positional']}-w{v['window']}-{v['attention']}"


# ---------------------------------------------------------------------------- config


def test_config_defaults_and_derived_values():
    c = GPTConfig(vocab_size=65, block_size=64)
    assert (c.n_layer, c.n_head, c.d_model, c.d_ff, c.d_head) == (4, 4, 128, 512, 32)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"positional": "absolute"},
            ValueError,
            r"positional must be one of \('learned', 'sinusoidal', 'rope', 'alibi'\), "
            r"got 'absolute'",
        ),
        (
            {"d_model": 512, "n_head": 6},
            ValueError,
            r"d_model=512 is not divisible by n_heads=6",
        ),
        (
            {"n_layer": 0},
            ValueError,
            r"GPTConfig.n_layer must be an integer >= 1, got 0",
        ),
        (
            {"vocab_size": 65.0},
            TypeError,
            r"GPTConfig.vocab_size must be an integer >= 1, got 65\.0",
        ),
        ({"window": 0}, ValueError, r"window must be an integer >= 1, got 0; None"),
        (
            {"dropout": 1.0},
            ValueError,
            r"GPTConfig.dropout must be a finite number >= 0 and < 1, got 1\.0",
        ),
        (
            {"attention": "flash"},
            ValueError,
            r"attention must be one of \('sdpa', 'manual'\)",
        ),
        ({"d_ff": 0}, ValueError, r"d_ff must be an integer >= 1, got 0; None means"),
        (
            {"d_model": 12, "n_head": 4, "positional": "rope"},
            ValueError,
            r"even head width.*12 / 4 = 3",
        ),
        ({"bias": "yes"}, TypeError, r"bias must be True or False"),
    ],
)
def test_config_rejects_bad_values(overrides, error, message):
    settings = {"vocab_size": 65, "block_size": 64, **overrides}
    with pytest.raises(error, match=message):
        GPTConfig(**settings)


# ---------------------------------------------------------------------------- GPT


def test_forward_shapes_and_initial_loss():
    model = tiny_gpt()
    idx = torch.randint(0, VOCAB, (3, 12))
    logits, loss = model(idx)
    assert logits.shape == (3, 12, VOCAB) and loss is None
    logits, loss = model(idx, torch.randint(0, VOCAB, (3, 12)))
    # Small initial weights: the prediction is close to uniform, loss close to
    # ln(vocab).
    assert abs(loss.item() - math.log(VOCAB)) < 0.1
    last, _ = model(idx, last_only=True)
    torch.testing.assert_close(last, logits[:, -1:])


def test_loss_ignores_minus_100_targets():
    model = tiny_gpt()
    idx = torch.randint(0, VOCAB, (2, 8))
    targets = torch.randint(0, VOCAB, (2, 8))
    targets[:, :5] = -100
    logits, loss = model(idx, targets)
    kept = torch.nn.functional.cross_entropy(
        logits[:, 5:].reshape(-1, VOCAB), targets[:, 5:].reshape(-1)
    )
    torch.testing.assert_close(loss, kept)


def test_forward_rejects_bad_input():
    model = tiny_gpt()
    with pytest.raises(
        ValueError, match=r"13 tokens is longer than block_size=12.*last 12 tokens"
    ):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"integer token ids.*torch.float32.*idx.long\(\)"
    ):
        model(torch.zeros(1, 4))
    with pytest.raises(
        ValueError, match=r"token id 23, outside the vocabulary \[0, 22\]"
    ):
        model(torch.tensor([[1, 23]]))
    with pytest.raises(ValueError, match=r"token id -1"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match=r"\(batch, seq\).*unsqueeze\(0\)"):
        model(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 4\)"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="last_only"):
        model(
            torch.zeros(2, 4, dtype=torch.long),
            torch.zeros(2, 4, dtype=torch.long),
            last_only=True,
        )
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"vocab_size": 3})


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_gpt_is_causal(variant):
    """The gradient of the logits at position t w.r.t. inputs after t is 0."""
    model = tiny_gpt(**variant)
    captured = []

    def keep_embedding(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    model.tok_emb.register_forward_hook(keep_embedding)
    idx = torch.randint(0, VOCAB, (1, 10))
    for t in (0, 4, 8):
        captured.clear()
        model.zero_grad()
        logits, _ = model(idx)
        logits[0, t].sum().backward()
        grad = captured[0].grad[0]  # (seq, d_model)
        assert (grad[t + 1 :] == 0).all(), f"position {t} reads the future"
        assert grad[t].abs().sum() > 0


@pytest.mark.parametrize("variant", VARIANTS[::2], ids=variant_id)
def test_cached_forward_matches_full_forward(variant):
    model = tiny_gpt(**variant).eval()
    idx = torch.randint(0, VOCAB, (2, 12))
    full, _ = model(idx)
    cache = model.make_cache(2)
    pieces = [
        model(idx[:, a:b], cache=cache)[0] for a, b in ((0, 5), (5, 6), (6, 7), (7, 12))
    ]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.pos == 12


def test_cache_errors():
    model = tiny_gpt()
    cache = model.make_cache(2)
    with pytest.raises(ValueError, match=r"cache does not fit.*\(2, 3, 2, any, 8\)"):
        model(torch.zeros(3, 2, dtype=torch.long), cache=cache)
    model(torch.zeros(2, 10, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match=r"cache already holds 10.*block_size=12"):
        model(torch.zeros(2, 3, dtype=torch.long), cache=cache)
    cache.reset()
    assert cache.pos == 0
    direct = KVCache(1, 1, 1, 2, 4)
    with pytest.raises(ValueError, match="KV cache is full"):
        direct.update(0, torch.zeros(1, 1, 3, 4), torch.zeros(1, 1, 3, 4))


def test_parameter_counts_and_flops():
    model = tiny_gpt()
    c = model.config
    per_block = (
        12 * c.d_model**2 + 2 * c.d_model
    )  # attention + MLP weights, two LayerNorm gains
    non_embedding = (
        c.n_layer * per_block + c.d_model + VOCAB * c.d_model
    )  # + ln_f + tied head
    assert model.num_params() == non_embedding
    assert (
        model.num_params(non_embedding=False)
        == non_embedding + c.block_size * c.d_model
    )
    assert (
        model.flops_per_token()
        == 6 * non_embedding + 12 * c.n_layer * c.d_model * c.block_size
    )
    untied = tiny_gpt(tie_weights=False)
    assert (
        untied.num_params(non_embedding=False)
        == model.num_params(non_embedding=False) + VOCAB * c.d_model
    )
    assert untied.num_params() == non_embedding
    assert tiny_gpt(window=3).flops_per_token() == 6 * non_embedding + 12 * 2 * 16 * 3


def test_weight_tying_and_residual_init():
    model = tiny_gpt(n_layer=8)
    assert model.lm_head.weight is model.tok_emb.weight
    block = model.blocks[0]
    assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert block.mlp.proj.weight.std().item() == pytest.approx(0.02 / 4, rel=0.15)
    assert "attn_mask" not in model.state_dict() and "alibi" not in model.state_dict()


def test_gpt_learns_a_fixed_sequence():
    model = tiny_gpt()
    data = torch.arange(13).remainder(VOCAB)[None]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        _, loss = model(data[:, :-1], data[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


def test_dropout_is_active_only_in_training():
    model = tiny_gpt(dropout=0.5)
    idx = torch.randint(0, VOCAB, (2, 8))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])


# ---------------------------------------------------------------------------- encoder


def tiny_encoder(**overrides) -> TransformerEncoder:
    torch.manual_seed(0)
    settings = dict(
        vocab_size=VOCAB, max_len=10, n_layer=2, n_head=2, d_model=16, dropout=0.0
    )
    return TransformerEncoder(EncoderConfig(**{**settings, **overrides}))


def test_encoder_mlm_loss_ignores_minus_100():
    model = tiny_encoder()
    idx = torch.randint(1, VOCAB, (2, 6))
    targets = torch.full_like(idx, -100)
    targets[0, 2], targets[1, 4] = 5, 7
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 6, VOCAB)
    expected = torch.nn.functional.cross_entropy(
        torch.stack([logits[0, 2], logits[1, 4]]), torch.tensor([5, 7])
    )
    torch.testing.assert_close(loss, expected)
    # Changing a target that is ignored changes nothing.
    assert model(idx, targets)[1].item() == pytest.approx(loss.item())


def test_encoder_is_bidirectional_and_hides_padding():
    model = tiny_encoder()
    idx = torch.tensor([[3, 4, 5, 6, 0, 0]])  # pad_id = 0
    out = model.encode(idx)
    other = model.encode(torch.tensor([[3, 4, 5, 9, 0, 0]]))
    assert not torch.allclose(out[0, 0], other[0, 0])  # position 0 reads position 3
    padded_differently = model.encode(
        torch.tensor([[3, 4, 5, 6, 0, 0]]), torch.tensor([[1, 1, 1, 1, 0, 0]])
    )
    torch.testing.assert_close(out, padded_differently)
    shorter = model.encode(torch.tensor([[3, 4, 5, 6]]))
    torch.testing.assert_close(out[:, :4], shorter, atol=1e-5, rtol=1e-5)


def test_encoder_rejects_bad_config_and_input():
    with pytest.raises(
        ValueError, match=r"positional must be one of \('learned', 'sinusoidal'\)"
    ):
        EncoderConfig(vocab_size=10, max_len=8, positional="rope")
    with pytest.raises(ValueError, match=r"pad_id must be an integer in \[0, 9\]"):
        EncoderConfig(vocab_size=10, max_len=8, pad_id=10)
    model = tiny_encoder()
    with pytest.raises(ValueError, match="longer than max_len=10"):
        model(torch.ones(1, 11, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask must have the shape of idx"):
        model(
            torch.ones(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 3).long()
        )
    with pytest.raises(TypeError, match=r"attention_mask must be a boolean or 0/1"):
        model(torch.ones(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 4))


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_sequence_classifier(pooling):
    classifier = SequenceClassifier(
        tiny_encoder(), n_classes=3, pooling=pooling, dropout=0.0
    )
    idx = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    logits, loss = classifier(idx, labels=torch.tensor([0, 2]))
    assert logits.shape == (2, 3) and loss.ndim == 0
    # Padding never changes the prediction.
    single, _ = classifier(torch.tensor([[6, 7]]))
    torch.testing.assert_close(logits[1:], single, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"pooling must be one of \('first', 'mean'\)"):
        SequenceClassifier(tiny_encoder(), 3, pooling="max")
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        SequenceClassifier(tiny_encoder(), 1)


def test_mask_tokens_follows_bert_statistics():
    vocab, mask_id, specials = 1000, 3, (0, 1, 2)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, vocab, (200, 500), generator=g)
    ids[:, 0], ids[:, -1] = 1, 2  # [CLS] ... [SEP]
    ids[:5, 400:] = 0  # some padding
    inputs, targets = mask_tokens(ids, mask_id, vocab, specials, prob=0.15, generator=g)

    chosen = targets != -100
    assert torch.equal(targets[chosen], ids[chosen])
    assert not chosen[torch.isin(ids, torch.tensor(specials))].any()
    assert torch.equal(inputs[~chosen], ids[~chosen])
    n_eligible = (~torch.isin(ids, torch.tensor(specials))).sum().item()
    assert chosen.sum().item() / n_eligible == pytest.approx(0.15, abs=0.005)

    masked = (inputs == mask_id) & chosen
    unchanged = (inputs == ids) & chosen
    random = chosen & ~masked & ~unchanged
    n = chosen.sum().item()
    assert masked.sum().item() / n == pytest.approx(0.8, abs=0.01)
    assert unchanged.sum().item() / n == pytest.approx(
        0.1, abs=0.01
    )  # + ~0.1/996 random hits
    assert random.sum().item() / n == pytest.approx(0.1, abs=0.01)
    assert not torch.isin(inputs[random], torch.tensor([0, 1, 2, 3])).any()

    again = mask_tokens(
        ids, mask_id, vocab, specials, generator=torch.Generator().manual_seed(1)
    )
    same = mask_tokens(
        ids, mask_id, vocab, specials, generator=torch.Generator().manual_seed(1)
    )
    assert all(torch.equal(a, b) for a, b in zip(again, same))


def test_mask_tokens_rejects_bad_arguments():
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"prob must be a finite number > 0 and <= 1"):
        mask_tokens(ids, 3, 10, prob=0)
    with pytest.raises(
        ValueError, match=r"mask_id must be an integer in \[0, 9\], got 10"
    ):
        mask_tokens(ids, 10, 10)
    with pytest.raises(TypeError, match="integer tensor"):
        mask_tokens(ids.float(), 3, 10)


# ---------------------------------------------------------------------------- seq2seq


def tiny_seq2seq(**overrides) -> EncoderDecoder:
    torch.manual_seed(0)
    settings = dict(
        src_vocab_size=19,
        tgt_vocab_size=VOCAB,
        max_len=12,
        n_layer=2,
        n_head=2,
        d_model=16,
        dropout=0.0,
    )
    return EncoderDecoder(Seq2SeqConfig(**{**settings, **overrides}))


def test_seq2seq_shapes_and_loss_ignores_padding():
    model = tiny_seq2seq()
    src = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]])
    tgt_in = torch.tensor([[1, 4, 5, 6], [1, 7, 0, 0]])
    tgt_out = torch.tensor([[4, 5, 6, 2], [7, 2, 0, 0]])
    logits, loss = model(src, tgt_in, tgt_out)
    assert logits.shape == (2, 4, VOCAB)
    keep = tgt_out != 0
    expected = torch.nn.functional.cross_entropy(logits[keep], tgt_out[keep])
    torch.testing.assert_close(loss, expected)


def test_seq2seq_decoder_is_causal_and_source_padding_is_hidden():
    model = tiny_seq2seq()
    src = torch.tensor([[5, 6, 7, 0, 0]])
    tgt = torch.tensor([[1, 4, 5, 6, 7]])
    logits, _ = model(src, tgt)
    changed_future, _ = model(src, torch.tensor([[1, 4, 5, 9, 9]]))
    torch.testing.assert_close(logits[:, :3], changed_future[:, :3])
    assert not torch.allclose(logits[:, 3:], changed_future[:, 3:])
    by_lengths, _ = model(
        torch.tensor([[5, 6, 7, 11, 12]]), tgt, src_mask=torch.tensor([3])
    )
    torch.testing.assert_close(logits, by_lengths, atol=1e-5, rtol=1e-5)
    unpadded, _ = model(torch.tensor([[5, 6, 7]]), tgt)
    torch.testing.assert_close(logits, unpadded, atol=1e-5, rtol=1e-5)


def test_seq2seq_learns_to_reverse_and_greedy_decodes():
    model = tiny_seq2seq(d_model=32)
    bos, eos = 1, 2
    src = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
    reference = torch.tensor([[8, 7, 6, 5, eos], [11, 10, 9, eos, 0]])
    tgt_in = torch.cat([torch.full((2, 1), bos), reference[:, :-1]], dim=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(80):
        _, loss = model(src, tgt_in, reference)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    model.train()
    out = greedy_decode(model, src, bos, eos, max_len=8)
    assert model.training  # restored
    assert torch.equal(out, reference)  # row 2 stops at EOS and is padded with pad_id
    with pytest.raises(ValueError, match=r"max_len must be an integer in \[1, 12\]"):
        greedy_decode(model, src, bos, eos, max_len=13)


def test_seq2seq_config_errors():
    with pytest.raises(
        ValueError, match=r"pad_id must be an integer in \[0, 4\], got 7"
    ):
        Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=5, pad_id=7)
    with pytest.raises(ValueError, match="d_model=512 is not divisible by n_heads=6"):
        Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=5, d_model=512, n_head=6)
    model = tiny_seq2seq()
    with pytest.raises(ValueError, match=r"src has 13 tokens, more than max_len=12"):
        model(torch.ones(1, 13, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tgt_in contains token id 30"):
        model(torch.ones(1, 3, dtype=torch.long), torch.tensor([[1, 30]]))
