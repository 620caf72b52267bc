"""Adapters and LoRA on their own: each starts as the identity, trains only its own few
numbers, and (LoRA) merges into one plain linear layer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lm_course.finetune import (
    Adapted,
    Adapter,
    Classifier,
    LoRALinear,
    add_adapters,
    add_lora,
    count_parameters,
    layer_norms,
    relative_change,
    snapshot,
    train_only,
)
from lm_course.models.encoder import EncoderConfig, TransformerEncoder
from lm_course.models.gpt import GPT, GPTConfig


def encoder(width: int = 32, layers: int = 2) -> TransformerEncoder:
    torch.manual_seed(0)
    config = EncoderConfig(50, 16, n_layer=layers, n_head=2, d_model=width, pad_id=0)
    return TransformerEncoder(config).eval()


def gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(50, 16, n_layer=2, n_head=2, d_model=32)).eval()


IDS = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]])
KEEP = IDS != 0


@pytest.mark.parametrize("make", [encoder, gpt])
def test_adapters_start_as_the_identity_and_sit_after_each_sublayer(make) -> None:
    model = Classifier(make(), 2).eval()
    before = model(IDS, KEEP)[0]
    adapters = add_adapters(model.trunk, bottleneck=4)
    assert len(adapters) == 4
    assert torch.equal(model(IDS, KEEP)[0], before)
    block = model.trunk.blocks[0]
    assert isinstance(block.attn, Adapted) and isinstance(block.mlp, Adapted)
    with pytest.raises(ValueError, match="already has adapters"):
        add_adapters(model.trunk)


def test_an_adapter_is_a_residual_bottleneck() -> None:
    torch.manual_seed(0)
    adapter = Adapter(8, 3)
    nn.init.normal_(adapter.up.weight)
    h = torch.randn(2, 5, 8)
    down = torch.nn.functional.gelu(h @ adapter.down.weight.T + adapter.down.bias)
    expected = h + down @ adapter.up.weight.T + adapter.up.bias
    assert torch.allclose(adapter(h), expected, atol=1e-6)
    assert sum(p.numel() for p in adapter.parameters()) == 2 * 8 * 3 + 3 + 8


def test_houlsby_setup_trains_under_five_percent_and_moves_only_those() -> None:
    model = Classifier(encoder(width=64, layers=2), 2)
    adapters = add_adapters(model.trunk, bottleneck=4)
    train_only(model, *adapters, *layer_norms(model), model.head)
    trainable, total = count_parameters(model)
    assert trainable / total < 0.05
    before = snapshot(model)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], 0.1)
    for _ in range(3):
        loss = model(IDS, KEEP, torch.tensor([0, 1]))[1]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    moved = relative_change(before, model)
    assert moved["embeddings"] == 0.0
    assert moved["block 0"] > 0.0  # its adapters and layer norms
    frozen = model.trunk.blocks[0].attn.sublayer.qkv.weight
    assert torch.equal(frozen, before["trunk.blocks.0.attn.sublayer.qkv.weight"])


@pytest.mark.parametrize("make", [encoder, gpt])
def test_lora_starts_at_the_pretrained_model_and_freezes_the_base(make) -> None:
    model = Classifier(make(), 2).eval()
    before = model(IDS, KEEP)[0]
    layers = add_lora(model.trunk, rank=2)
    assert len(layers) == 4
    assert torch.equal(model(IDS, KEEP)[0], before)
    assert not any(p.requires_grad for layer in layers for p in layer.base.parameters())
    with pytest.raises(ValueError, match="already has LoRA"):
        add_lora(model.trunk)
    with pytest.raises(ValueError, match="no linear layer 'q'"):
        add_lora(make(), targets=("q",))


def test_lora_is_a_scaled_low_rank_update_that_merges_exactly() -> None:
    torch.manual_seed(0)
    base = nn.Linear(12, 20)
    layer = LoRALinear(copy.deepcopy(base), rank=3, alpha=6.0)
    nn.init.normal_(layer.lora_b)
    x = torch.randn(4, 7, 12)
    delta = 2.0 * layer.lora_b @ layer.lora_a  # alpha / rank = 2
    assert torch.allclose(layer.delta(), delta)
    assert torch.linalg.matrix_rank(layer.delta()) == 3
    expected = base(x) + x @ delta.T
    assert torch.allclose(layer(x), expected, atol=1e-5)
    merged = layer.merged()
    assert isinstance(merged, nn.Linear)
    assert torch.allclose(merged(x), expected, atol=1e-5)
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 3 * 32


def test_lora_and_adapters_check_their_arguments() -> None:
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(4, 4), rank=5)
    with pytest.raises(TypeError, match="blocks"):
        add_lora(nn.Linear(4, 4))
    with pytest.raises(TypeError, match="blocks"):
        add_adapters(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="bottleneck"):
        Adapter(8, 0)


# ------------------------------------------------------------------ methods and batches


def test_each_method_trains_what_it_says_and_leaves_the_trunk_alone() -> None:
    from lm_course.finetune import METHODS, setup

    trunk = encoder(width=64)
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    shares = {}
    for method in METHODS:
        model = setup(trunk, method, seed=3)
        trainable, total = count_parameters(model)
        shares[method] = trainable / total
        head = model.head.weight
        assert head.requires_grad
        assert torch.equal(head, setup(trunk, method, seed=3).head.weight)
    assert shares["full"] == shares["scratch"] == 1.0
    assert shares["probe"] < shares["lora"] < 0.1 and shares["adapters"] < 0.1
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, before[key])
    scratch = setup(trunk, "scratch", seed=5)
    assert not torch.equal(scratch.trunk.tok_emb.weight, trunk.tok_emb.weight)
    with pytest.raises(ValueError, match="method"):
        setup(trunk, "prompt")


def test_sentence_batches_and_accuracy() -> None:
    from lm_course.finetune import SentenceBatches, accuracy, setup
    from lm_course.pretraining import Vocab

    texts = ["a good film", "a bad film", "good fun", "bad and dull"] * 10
    labels = [1, 0, 1, 0] * 10
    vocab = Vocab.train(texts, 16)  # small enough for every sentencepiece >= 0.2
    batches = SentenceBatches(vocab, {"train": (texts, labels)}, 8, max_len=6)
    ids, keep, y = batches("train", torch.Generator().manual_seed(0))
    assert ids.shape[0] == 8 and ids.shape == keep.shape and ids.shape[1] <= 6
    assert y.dtype == torch.long
    again = batches("train", torch.Generator().manual_seed(0))
    assert torch.equal(again[0], ids)
    torch.manual_seed(0)
    config = EncoderConfig(
        len(vocab), 8, n_layer=1, n_head=2, d_model=16, pad_id=vocab.pad
    )
    model = setup(TransformerEncoder(config), "full")
    value = accuracy(model, vocab, texts, labels, max_len=6)
    assert isinstance(value, float) and 0.0 <= value <= 1.0
    with pytest.raises(ValueError, match="as many labels"):
        SentenceBatches(vocab, {"train": (texts, labels[:3])}, 8, 6)
    with pytest.raises(ValueError, match="unknown split"):
        batches("val", torch.Generator())
