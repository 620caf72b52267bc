"""Few-shot prompting (GPT-3's in-context learning): a task without moving a weight.

GPT-3 (article 004, §1.2.1) is not fine-tuned for a task: its prompt shows a few solved
examples and then the new input, and the model's continuation is the answer. For a
classification task the continuation is not sampled but *scored*: each label is one
possible continuation, and the model picks the label whose tokens it finds most
likely after the prompt::

    review: a gripping , funny film .
    sentiment: positive
    review: dull and far too long .
    sentiment: negative
    review: <the new sentence>
    sentiment:            <- compare P(" positive") with P(" negative")

Whether this works is a property of scale: GPT-3's paper shows few-shot accuracy
growing with model size, from near chance for its smallest models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_int, describe
from ..models.gpt import GPT
from ..pretraining.vocab import Vocab

__all__ = ["TEMPLATE", "few_shot_prompt", "option_logprobs"]

TEMPLATE = "review: {text}\nsentiment:{label}\n"


def few_shot_prompt(
    examples: Sequence[tuple[str, str]], query: str, template: str = TEMPLATE
) -> str:
    """Solved ``(text, label)`` examples, then ``query`` with its label left open.

    ``template`` has the fields ``{text}`` and ``{label}``; labels are written with a
    leading space (``" positive"``), so that a label is the same piece whether it
    follows a prompt or another label. The returned prompt ends where the label of
    ``query`` would start.
    """
    if "{text}" not in template or "{label}" not in template:
        raise ValueError(f"template needs {{text}} and {{label}}, got {template!r}")
    shots = "".join(template.format(text=t, label=f" {label}") for t, label in examples)
    return shots + template.split("{label}")[0].format(text=query)


@torch.no_grad()
def option_logprobs(
    model: GPT, vocab: Vocab, prompt: str, options: Sequence[str]
) -> Tensor:
    """``ln P(option | prompt)`` for each option, summed over its tokens: ``(n,)``.

    The prompt is preceded by ``eos`` (a document start, as in pretraining) and cut
    from the left when prompt and option do not fit the model's context.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a GPT, got {describe(model)}")
    if isinstance(options, str) or not options:
        raise TypeError(f"options must be a non-empty list of strings, got {options!r}")
    context = [vocab.eos, *vocab.encode(prompt)]
    device = model.tok_emb.weight.device
    scores = []
    was_training = model.training
    model.eval()
    try:
        for option in options:
            answer = vocab.encode(option)
            check_int(f"tokens of {option!r}", len(answer), minimum=1)
            ids = (context + answer)[-model.config.block_size - 1 :]
            x = torch.tensor(ids[:-1], device=device)[None]  # (1, seq)
            logp = F.log_softmax(model(x)[0][0].float(), dim=-1)  # (seq, vocab)
            targets = torch.tensor(ids[1:], device=device)
            picked = logp[torch.arange(len(targets), device=device), targets]
            scores.append(picked[-len(answer) :].sum())
    finally:
        model.train(was_training)
    return torch.stack(scores).cpu()
