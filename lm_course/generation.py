"""Autoregressive text generation for the GPT: sampling filters and the decoding loop.

A language model gives a distribution over the next token; generating text means picking
one token, appending it, and asking again (article 003, autoregressive decoding). How
the token is picked changes the text a lot:

* **greedy** -- always the most likely token: deterministic, often repetitive;
* **temperature** -- divide the logits by ``T`` before the softmax: ``T < 1`` sharpens
  the distribution, ``T > 1`` flattens it;
* **top-k** -- sample among the ``k`` most likely tokens only;
* **top-p (nucleus)** -- sample among the smallest set of tokens whose probabilities add
  up to at least ``p``, so the candidate set grows and shrinks with the model's
  certainty.

Each filter below takes and returns logits ``(batch, vocab)``; removed tokens get
``-inf``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from lm_course.checks import (
    check_bool,
    check_int,
    check_logits,
    check_number,
    check_token_ids,
)
from lm_course.models.gpt import GPT
from lm_course.models.seq2seq import greedy_decode

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "sample_next",
    "generate",
    "greedy_decode",
]


def _check_sampling(
    temperature: float, top_k: int | None, top_p: float | None, greedy: bool
) -> None:
    check_bool("greedy", greedy)
    if not greedy:
        hint = "; for the most likely token at every step use greedy=True"
        check_number("temperature", temperature, minimum=0, strict_min=True, hint=hint)
    if top_k is not None:
        check_int("top_k", top_k, minimum=1, hint="; None keeps every token")
    if top_p is not None:
        hint = "; None keeps every token"
        check_number("top_p", top_p, minimum=0, maximum=1, strict_min=True, hint=hint)


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """Divide logits ``(batch, vocab)`` by ``temperature`` (> 0)."""
    _check_sampling(temperature, None, None, greedy=False)
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row ``(batch, vocab)``; the rest get -inf.

    Ties at the k-th value are all kept. ``k`` larger than the vocabulary keeps
    everything.
    """
    _check_sampling(1.0, k, None, greedy=False)
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the fewest top tokens whose probability reaches ``p``.

    Works on logits ``(batch, vocab)``. The most likely token is always kept, so ``p``
    close to 0 behaves like greedy decoding and ``p = 1`` keeps every token.
    """
    _check_sampling(1.0, None, p, greedy=False)
    if p >= 1.0:  # rounding in the cumulative sum could otherwise drop the far tail
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    # A token is dropped when the tokens ranked above it already hold p of the mass.
    mass_before = torch.cumsum(probs, dim=-1) - probs
    drop_sorted = mass_before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick one token per row from logits ``(batch, vocab)``; returns ids ``(batch,)``.

    Order of operations: temperature, then top-k, then top-p, then a draw from the
    softmax (or the arg-max when ``greedy``).
    """
    _check_sampling(temperature, top_k, top_p, greedy)
    if greedy:
        return check_logits(logits).argmax(dim=-1)
    logits = logits.float() / temperature
    # After the division: a tiny temperature can turn large logits into +inf.
    scaled = (
        f" (after dividing by temperature={temperature})" if temperature != 1 else ""
    )
    check_logits(logits, hint=scaled)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def generate(
    model: GPT,
    idx: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    stop_tokens: Iterable[int] | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Continue the prompts ``idx`` ``(batch, seq)`` by up to ``max_new_tokens`` tokens.

    Returns ``(batch, seq + n)`` ids: the prompts followed by ``n <= max_new_tokens``
    new tokens.

    Without a cache, every step runs the model on the last ``block_size`` tokens. With
    ``use_cache=True`` the prompt is run once (*prefill*, cropped to its last
    ``block_size`` tokens) and each later step feeds only the newest token, reusing the
    stored keys and values. A cache cannot grow past ``block_size``: once the context
    fills it, each step re-runs the last ``block_size`` tokens from position 0 --
    exactly what the no-cache path does, so both paths give the same tokens, and past
    that point the cache no longer saves time.

    ``stop_tokens``: a row that produces one of these ids is finished; its later
    positions repeat that stop token, and generation ends early when every row is
    finished. The model is run in eval mode and its training flag restored afterwards.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {type(model).__name__}")
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    _check_sampling(temperature, top_k, top_p, greedy)
    check_bool("use_cache", use_cache)
    vocab = model.config.vocab_size
    check_token_ids(idx, vocab, "idx", device=model.tok_emb.weight.device)
    block_size = model.config.block_size
    stop = None
    if stop_tokens is not None:
        stop_list = [
            check_int(f"stop_tokens[{i}]", t, minimum=0, maximum=vocab - 1)
            for i, t in enumerate(stop_tokens)
        ]
        stop = torch.tensor(stop_list, dtype=torch.long, device=idx.device)

    def pick(logits: Tensor) -> Tensor:
        return sample_next(
            logits[:, -1],
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            greedy=greedy,
            generator=generator,
        )

    was_training = model.training
    model.eval()
    try:
        # Inference mode skips autograd's bookkeeping, which is most of the cost of a
        # one-token step of a small model.
        with torch.inference_mode():
            cache = model.make_cache(idx.size(0)) if use_cache else None
            finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
            for step in range(max_new_tokens):
                if cache is None or step == 0 or cache.pos >= block_size:
                    if cache is not None:  # (re-)prefill from position 0
                        cache.reset()
                    logits, _ = model(idx[:, -block_size:], cache=cache, last_only=True)
                else:
                    logits, _ = model(idx[:, -1:], cache=cache, last_only=True)
                next_id = pick(logits)  # (batch,)
                # Finished rows repeat their last token (the stop token that ended
                # them).
                next_id = torch.where(finished, idx[:, -1], next_id)
                idx = torch.cat([idx, next_id[:, None]], dim=1)
                if stop is not None:
                    finished |= torch.isin(next_id, stop)
                    if finished.all():
                        break
    finally:
        model.train(was_training)
    # Tensors made in inference mode cannot be used in training later; a clone can.
    return idx.clone()
