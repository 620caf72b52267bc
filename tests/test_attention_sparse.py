"""Sparse attention patterns: the masks, what stacked layers reach, and the attention
that computes only the kept blocks (equal to dense masked attention, linear memory)."""

from functools import partial

import pytest
import torch

from lm_course.attention import (
    causal_mask,
    scaled_dot_product_attention,
    sliding_window_mask,
)
from lm_course.attention.cost import loglog_slope, peak_memory
from lm_course.attention.sparse import (
    block_layout,
    block_local_mask,
    block_sparse_attention,
    global_tokens_mask,
    local_strided_mask,
    reachable,
    sliding_window_attention,
    strided_mask,
)
from lm_course.models.gpt import GPT, GPTConfig


def by_rule(seq: int, rule, k_len: int | None = None) -> torch.Tensor:
    """A mask written out pair by pair: the reference for the vectorised ones."""
    k_len = seq if k_len is None else k_len
    return torch.tensor(
        [[rule(k_len - seq + i, j) for j in range(k_len)] for i in range(seq)]
    )


# ---------------------------------------------------------------------------- masks


@pytest.mark.parametrize(("seq", "k_len"), [(13, None), (3, 13), (1, 9)])
def test_masks_keep_exactly_the_pairs_of_their_rule(seq, k_len):
    cases = {
        "strided 4": (
            strided_mask(seq, 4, k_len),
            lambda i, j: j <= i and (i - j) % 4 == 0,
        ),
        "block-local 5": (
            block_local_mask(seq, 5, k_len),
            lambda i, j: j <= i and i // 5 == j // 5,
        ),
        "window 3 + stride 4": (
            local_strided_mask(seq, 3, 4, k_len),
            lambda i, j: j <= i and (i - j < 3 or (i - j) % 4 == 0),
        ),
        "window 2 + 3 global": (
            global_tokens_mask(seq, 2, 3, k_len),
            lambda i, j: j <= i and (i - j < 2 or j < 3),
        ),
    }
    for name, (mask, rule) in cases.items():
        assert mask.dtype == torch.bool, name
        assert torch.equal(mask, by_rule(seq, rule, k_len)), name


def test_degenerate_patterns_are_familiar_masks():
    assert torch.equal(strided_mask(9, 1), causal_mask(9))
    assert torch.equal(block_local_mask(9, 9), causal_mask(9))
    assert torch.equal(block_local_mask(9, 1), torch.eye(9, dtype=torch.bool))
    assert torch.equal(global_tokens_mask(9, 3, 0), sliding_window_mask(9, 3))
    assert torch.equal(local_strided_mask(9, 3, 100), sliding_window_mask(9, 3))


def test_patterns_refuse_bad_sizes():
    with pytest.raises(ValueError, match="stride must be an integer >= 1, got 0"):
        strided_mask(5, 0)
    with pytest.raises(ValueError, match="block must be an integer >= 1"):
        block_local_mask(5, 0)
    with pytest.raises(ValueError, match="n_global must be an integer >= 0"):
        global_tokens_mask(5, 2, -1)
    with pytest.raises(ValueError, match=r"k_len \(2\) must be >= q_len \(5\)"):
        strided_mask(5, 2, k_len=2)


# ---------------------------------------------------------------------------- reach


@pytest.mark.parametrize(("window", "layers"), [(2, 1), (3, 2), (4, 3), (8, 2)])
def test_a_window_reaches_layers_times_window_minus_one_back(window, layers):
    seq = 40
    reach = reachable(sliding_window_mask(seq, window), layers)
    assert torch.equal(reach, sliding_window_mask(seq, layers * (window - 1) + 1))


def test_what_two_or_more_layers_of_each_pattern_reach():
    seq, window = 64, 8
    mask = local_strided_mask(seq, window, window)
    assert not reachable(mask, 1).equal(causal_mask(seq))
    assert reachable(mask, 2).equal(causal_mask(seq))
    # Block-local attention never crosses a block boundary, however deep.
    assert reachable(block_local_mask(seq, 8), 5).equal(block_local_mask(seq, 8))
    # In a decoder a global token at the start sees nothing after itself, so it
    # cannot relay: only its own information travels further than the windows.
    reach = reachable(global_tokens_mask(seq, 4, 1), 3)
    first = torch.zeros(seq, seq, dtype=torch.bool)
    first[:, 0] = True
    assert reach.equal(sliding_window_mask(seq, 3 * 3 + 1) | first)


def test_reachable_checks_its_mask():
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        reachable(torch.ones(3, 3), 2)
    with pytest.raises(ValueError, match="layers must be an integer >= 1"):
        reachable(causal_mask(3), 0)


# ---------------------------------------------------------------------------- compute


def qkv(seq: int, seed: int = 0, heads: int = 3, d: int = 8, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(2, heads, seq, d, generator=g) for _ in range(3))


@pytest.mark.parametrize(
    ("seq", "window", "block"),
    [(37, 5, None), (64, 16, None), (50, 7, 4), (10, 20, None), (9, 1, 3), (65, 64, 8)],
)
def test_sliding_window_attention_equals_dense_masked_attention(seq, window, block):
    q, k, v = qkv(seq, scale=3.0)
    dense, _ = scaled_dot_product_attention(
        q, k, v, mask=sliding_window_mask(seq, window)
    )
    torch.testing.assert_close(sliding_window_attention(q, k, v, window, block), dense)


@pytest.mark.parametrize(
    "pattern",
    [
        lambda t: strided_mask(t, 6),
        lambda t: block_local_mask(t, 7),
        lambda t: local_strided_mask(t, 5, 5),
        lambda t: global_tokens_mask(t, 4, 3),
        lambda t: causal_mask(t),
    ],
    ids=["strided", "block-local", "local+strided", "global", "causal"],
)
@pytest.mark.parametrize("seq", [40, 45])
def test_block_sparse_attention_equals_dense_for_every_pattern(pattern, seq):
    q, k, v = qkv(seq, seed=1)
    mask = pattern(seq)
    dense, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    layout = block_layout(mask, 8)
    torch.testing.assert_close(block_sparse_attention(q, k, v, layout, 8, mask), dense)

    def rule(i, j):  # the same mask written as a rule on positions
        return mask[i.clamp(max=seq - 1), j.clamp(max=seq - 1)]

    torch.testing.assert_close(block_sparse_attention(q, k, v, layout, 8, rule), dense)


def test_block_layout_and_the_blocks_a_window_needs():
    layout = block_layout(sliding_window_mask(32, 8), 8)
    expected = torch.tensor(
        [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(layout, expected)
    assert block_layout(causal_mask(10), 4).shape == (3, 3)  # a last, short block


def test_block_sparse_attention_rejects_a_layout_of_the_wrong_size():
    q, k, v = qkv(16)
    with pytest.raises(ValueError, match=r"boolean \(2, 2\) for seq=16 and block=8"):
        block_sparse_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool), 8, None)


def test_gradients_flow_like_dense_attention():
    q, k, v = (t.requires_grad_() for t in qkv(24, seed=2))
    sliding_window_attention(q, k, v, 5).square().sum().backward()
    sparse_grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    mask = sliding_window_mask(24, 5)
    scaled_dot_product_attention(q, k, v, mask=mask)[0].square().sum().backward()
    for got, dense in zip(sparse_grads, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(got, dense)


def test_window_memory_grows_linearly_and_dense_memory_quadratically():
    lengths = [256, 512, 1024]
    window, dense = [], []
    for seq in lengths:
        q, k, v = qkv(seq, heads=2, d=16)
        mask = causal_mask(seq)
        window.append(peak_memory(partial(sliding_window_attention, q, k, v, 32)))
        dense.append(peak_memory(partial(scaled_dot_product_attention, q, k, v, mask)))
    assert 0.9 < loglog_slope(lengths, window) < 1.1
    assert 1.9 < loglog_slope(lengths, dense) < 2.1


# ---------------------------------------------------------------------------- model


def test_gpt_with_window_and_stride_uses_the_sparse_pattern():
    torch.manual_seed(0)
    config = GPTConfig(11, block_size=16, n_layer=1, n_head=2, d_model=8)
    sparse = GPT(GPTConfig(**{**config.__dict__, "window": 3, "stride": 4}))
    assert torch.equal(sparse.attn_mask, local_strided_mask(16, 3, 4))
    # What position 15 reads in one layer: keys 13-15 and 11, 7, 3.
    embeddings = []

    def keep(module, inputs, output):
        output.retain_grad()
        embeddings.append(output)

    sparse.tok_emb.register_forward_hook(keep)
    sparse(torch.arange(16)[None] % 11)[0][0, 15].sum().backward()
    read = embeddings[0].grad[0].abs().sum(-1) > 0
    assert read.nonzero().flatten().tolist() == [3, 7, 11, 13, 14, 15]
    cache = sparse.eval().make_cache(1)
    idx = torch.randint(0, 11, (1, 16))
    pieces = [sparse(idx[:, a:b], cache=cache)[0] for a, b in ((0, 9), (9, 16))]
    torch.testing.assert_close(torch.cat(pieces, 1), sparse(idx)[0])


def test_stride_needs_a_window():
    with pytest.raises(ValueError, match="stride adds every stride-th key"):
        GPTConfig(11, block_size=16, stride=4)
    with pytest.raises(ValueError, match="GPTConfig.stride must be an integer >= 1"):
        GPTConfig(11, block_size=16, window=4, stride=0)
    flops = GPT(GPTConfig(11, block_size=16, n_layer=1, window=4, stride=4))
    per_token = 6 * flops.num_params() + 12 * 1 * 128 * (4 + 12 // 4)
    assert flops.flops_per_token() == per_token
