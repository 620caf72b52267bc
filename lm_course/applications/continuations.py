"""What a causal model writes after a prompt, and how repetitive it is.

Article 000 §3.3 warns that generated text "has some randomness and may be illogical"
(存在一定的随机性，可能生成不符合逻辑的句子). The randomness is not in the model, which
gives one distribution over the next token, but in how a token is picked from it
(:mod:`lm_course.generation`): sampling draws from it, greedy decoding takes its
largest entry and is deterministic -- and then tends to loop. Two helpers:

* :func:`continue_prompt` (and :func:`continuation_ids`) -- continuations of one
  prompt, framed the way the model was pretrained (a document starts after ``eos``
  and ends with one);
* :func:`repeated_ngram_share` -- the share of a text's n-grams that already occurred
  earlier in it: 0 for text that never repeats itself, near 1 for a loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..checks import check_int, describe
from ..generation import generate
from ..models.gpt import GPT
from ..pretraining.vocab import Vocab

__all__ = [
    "continuation_ids",
    "continue_prompt",
    "prompt_ids",
    "repeated_ngram_share",
]


def prompt_ids(vocab: Vocab, prompt: str, room: int, suffix: str = "") -> list[int]:
    """``eos``, the pieces of ``prompt``, then those of ``suffix``, in ``room`` ids.

    When they do not fit, the *end* of ``prompt`` is cut (a document's opening says
    most about it) and ``suffix`` -- a cue such as ``" tl;dr:"`` -- is always kept.
    """
    check_int("room", room, minimum=2)
    cue = vocab.encode(suffix) if suffix else []
    keep = room - 1 - len(cue)
    if keep < 1:
        raise ValueError(
            f"room={room} leaves no space for the prompt after the {len(cue)} pieces "
            f"of suffix={suffix!r}"
        )
    return [vocab.eos, *vocab.encode(prompt)[:keep], *cue]


def continuation_ids(
    model: GPT,
    vocab: Vocab,
    prompt: str,
    max_new_tokens: int,
    *,
    samples: int = 1,
    suffix: str = "",
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    stop_at_eos: bool = True,
) -> list[list[int]]:
    """The new piece ids of ``samples`` continuations of ``prompt`` (+ ``suffix``).

    The prompt is framed as in pretraining (``eos`` first) and cut, with
    :func:`prompt_ids`, so that it and the new tokens fit the model's context. The
    samples are drawn in one batch from a generator seeded with ``seed``, so the same
    call always gives the same ids. With ``stop_at_eos`` each row ends before its
    first ``eos`` (the end of a document); without, every row has ``max_new_tokens``
    ids, ``eos`` included where the model wrote it.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {describe(model)}")
    check_int("samples", samples, minimum=1)
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    room = model.config.block_size - max_new_tokens
    ids = prompt_ids(vocab, prompt, room, suffix)
    device = model.tok_emb.weight.device
    idx = torch.tensor([ids] * samples, device=device)  # (samples, prompt)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = generate(
        model,
        idx,
        max_new_tokens,
        greedy=greedy,
        temperature=temperature,
        top_k=top_k,
        stop_tokens=[vocab.eos] if stop_at_eos else None,
        generator=generator,
    )
    rows = out[:, len(ids) :].tolist()
    if stop_at_eos:
        rows = [
            row[: row.index(vocab.eos)] if vocab.eos in row else row for row in rows
        ]
    return rows


def continue_prompt(
    model: GPT,
    vocab: Vocab,
    prompt: str,
    max_new_tokens: int,
    *,
    samples: int = 1,
    suffix: str = "",
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> list[str]:
    """``samples`` continuations of ``prompt`` (+ ``suffix``) as text, each cut at
    ``eos``: :func:`continuation_ids`, decoded."""
    rows = continuation_ids(
        model,
        vocab,
        prompt,
        max_new_tokens,
        samples=samples,
        suffix=suffix,
        greedy=greedy,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
    )
    return [vocab.decode(row) for row in rows]


def repeated_ngram_share(tokens: Sequence[str | int], n: int = 3) -> float:
    """Share of the ``n``-grams of ``tokens`` that occurred earlier in ``tokens``.

    ``"a b c a b c"`` has the 3-grams abc, bca, cab, abc: one of four repeats, 0.25.
    A sequence shorter than ``n`` has no n-grams and gives 0.0.
    """
    if isinstance(tokens, str):
        raise TypeError("tokens must be a list of tokens (use text.split()), got a str")
    check_int("n", n, minimum=1)
    seen: set[tuple[str | int, ...]] = set()
    repeats = total = 0
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        repeats += gram in seen
        total += 1
        seen.add(gram)
    return repeats / total if total else 0.0
