"""Grouped-query and multi-query attention: equal to MHA where they must be, a smaller
cache, and a GPT config that leaves every existing model unchanged."""

import math

import pytest
import torch

from lm_course.attention import MultiHeadAttention, causal_mask
from lm_course.attention.grouped import GroupedQueryAttention, repeat_kv
from lm_course.models.gpt import GPT, GPTConfig
from lm_course.models.kvcache import KVCache, kv_cache_bytes
from lm_course.positional import RotaryEmbedding, alibi_bias

D, HEADS = 32, 8


def x(batch: int = 2, seq: int = 9) -> torch.Tensor:
    return torch.randn(batch, seq, D, generator=torch.Generator().manual_seed(1))


def test_repeat_kv_gives_each_group_its_head():
    kv = torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5)  # 3 key/value heads
    out = repeat_kv(kv, 4)
    assert out.shape == (2, 12, 4, 5)
    for head in range(12):
        assert torch.equal(out[:, head], kv[:, head // 4])
    assert repeat_kv(kv, 1) is kv


@pytest.mark.parametrize("backend", ["sdpa", "manual"])
def test_as_many_kv_heads_as_query_heads_is_multi_head_attention(backend):
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, HEADS, backend=backend)
    gqa = GroupedQueryAttention(D, HEADS, HEADS, backend=backend)
    gqa.load_state_dict(mha.state_dict())  # same fused [q; k; v] layout
    for kwargs in (
        {},
        {"is_causal": True},
        {"attn_bias": alibi_bias(HEADS, 9), "mask": causal_mask(9)},
        {"is_causal": True, "rope": RotaryEmbedding(D // HEADS, 16)},
    ):
        torch.testing.assert_close(gqa(x(), **kwargs), mha(x(), **kwargs))


def test_multi_query_attention_shares_one_key_and_value_head():
    torch.manual_seed(0)
    mqa = GroupedQueryAttention(D, HEADS, 1, backend="manual")
    assert mqa.qkv.weight.shape == (D + 2 * D // HEADS, D)
    inputs = x()
    q, k, v = mqa.project_heads(inputs)
    assert q.shape == (2, HEADS, 9, 4) and k.shape == v.shape == (2, 1, 9, 4)
    mask = causal_mask(9)
    heads = []
    for h in range(HEADS):  # every query head against the one shared key/value head
        scores = q[:, h] @ k[:, 0].transpose(-2, -1) / math.sqrt(4)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        heads.append(weights @ v[:, 0])
    expected = mqa.proj(torch.stack(heads, 1).transpose(1, 2).reshape(2, 9, D))
    torch.testing.assert_close(mqa(inputs, is_causal=True), expected)


def test_kv_heads_must_divide_the_query_heads():
    with pytest.raises(ValueError, match=r"n_kv_heads=3 does not divide the 8"):
        GroupedQueryAttention(D, HEADS, 3)
    with pytest.raises(ValueError, match=r"GPTConfig.n_kv_head=3 does not divide"):
        GPTConfig(11, block_size=8, n_head=4, n_kv_head=3)
    with pytest.raises(ValueError, match="n_kv_heads must be an integer >= 1"):
        GroupedQueryAttention(D, HEADS, 0)


def test_a_layer_used_alone_checks_its_cache_and_uses_it():
    torch.manual_seed(0)
    gqa = GroupedQueryAttention(D, HEADS, 2).eval()
    inputs = x(seq=6)
    with pytest.raises(ValueError, match=r"cache does not fit.*\(any, 2, 2, any, 4\)"):
        gqa(inputs, cache=KVCache(1, 2, HEADS, 10, 4), is_causal=True)
    with pytest.raises(ValueError, match=r"layer_idx must be .* \[0, 0\], got 1"):
        gqa(inputs, cache=KVCache(1, 2, 2, 10, 4), layer_idx=1)
    holding_two = KVCache(1, 2, 2, 10, 4)
    holding_two.advance(2)  # the mask must then cover 2 + 6 keys
    with pytest.raises(ValueError, match=r"mask must broadcast to .*\(2, 8, 6, 8\)"):
        gqa(inputs, cache=holding_two, mask=causal_mask(6))
    cache = KVCache(1, 2, 2, 10, 4)
    first = gqa(inputs[:, :4], cache=cache, is_causal=True)
    cache.advance(4)
    rest = gqa(inputs[:, 4:], cache=cache, is_causal=True)
    full = gqa(inputs, is_causal=True)
    torch.testing.assert_close(torch.cat([first, rest], 1), full)


# ---------------------------------------------------------------------------- model


def gpt(**overrides) -> GPT:
    torch.manual_seed(0)
    settings = dict(vocab_size=11, block_size=12, n_layer=2, n_head=4, d_model=16)
    return GPT(GPTConfig(**{**settings, **overrides}))


def test_the_default_is_multi_head_and_changes_no_weight():
    config = GPTConfig(11, block_size=12, n_layer=2, n_head=4, d_model=16)
    assert config.n_kv_head == 4
    default, explicit = gpt(), gpt(n_kv_head=4)
    assert all(
        type(block.attn) is MultiHeadAttention
        for block in (*default.blocks, *explicit.blocks)
    )
    for (name, a), (_, b) in zip(
        default.state_dict().items(), explicit.state_dict().items()
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("n_kv_head", [2, 1])
@pytest.mark.parametrize("positional", ["rope", "alibi", "learned"])
def test_grouped_gpt_cache_matches_full_forward(n_kv_head, positional):
    model = gpt(n_kv_head=n_kv_head, positional=positional).eval()
    assert all(isinstance(b.attn, GroupedQueryAttention) for b in model.blocks)
    idx = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(0))
    cache = model.make_cache(2)
    assert cache.k.shape == (2, 2, n_kv_head, 12, 4)
    pieces = [model(idx[:, a:b], cache=cache)[0] for a, b in ((0, 5), (5, 6), (6, 12))]
    torch.testing.assert_close(torch.cat(pieces, 1), model(idx)[0])


def test_fewer_kv_heads_mean_fewer_weights_and_a_smaller_cache():
    mha, gqa, mqa = gpt(), gpt(n_kv_head=2), gpt(n_kv_head=1)
    d, d_head, layers = 16, 4, 2
    assert mha.num_params() - gqa.num_params() == layers * d * 2 * 2 * d_head
    assert mha.num_params() - mqa.num_params() == layers * d * 2 * 3 * d_head
    sizes = [m.make_cache(1).nbytes for m in (mha, gqa, mqa)]
    assert sizes == [kv_cache_bytes(2, h, d_head, 12) for h in (4, 2, 1)]
    assert sizes[0] == 2 * sizes[1] == 4 * sizes[2]
    with pytest.raises(ValueError, match=r"cache does not fit.*\(2, 1, 2, any, 4\)"):
        gqa(torch.zeros(1, 3, dtype=torch.long), cache=mha.make_cache(1))


def test_grouped_gpt_training_step_is_one_graph():
    torch._dynamo.reset()
    model = gpt(n_kv_head=2, positional="rope")
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    eager = model(idx, idx)[1]
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(idx, idx)[1], eager)


def test_kv_cache_bytes():
    # Llama 2 7B: 32 layers, 32 heads of 128, float16: 512 KiB per token.
    assert kv_cache_bytes(32, 32, 128, 1, dtype=torch.float16) == 512 * 1024
    # Llama 2 70B: 80 layers, 8 key/value heads (GQA) instead of 64.
    gqa = kv_cache_bytes(80, 8, 128, 4096, dtype=torch.float16)
    assert gqa * 8 == kv_cache_bytes(80, 64, 128, 4096, dtype=torch.float16)
    assert gqa == 1.25 * 2**30
    assert kv_cache_bytes(2, 4, 8, 10, batch_size=3) == 2 * 2 * 3 * 4 * 10 * 8 * 4
    assert KVCache(2, 3, 4, 10, 8).nbytes == kv_cache_bytes(2, 4, 8, 10, 3)
    assert kv_cache_bytes(2, 4, 8, 0) == 0
    with pytest.raises(ValueError, match="n_kv_head must be an integer >= 1"):
        kv_cache_bytes(2, 0, 8, 10)
