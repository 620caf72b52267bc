"""Beam search, written out: keep the ``k`` best partial translations, not just one.

Greedy decoding (:func:`lm_course.models.seq2seq.greedy_decode`) commits to the most
likely word at every step. A word that looked best early can lead into a sentence that
is unlikely as a whole, and greedy decoding cannot go back. Beam search keeps ``k``
candidate prefixes (*hypotheses*, the *beam*) with their total log-probability. Each
step extends every hypothesis by every word, scores the ``k * vocab`` extensions, and
keeps the ``k`` best. A hypothesis that produces EOS is finished: its score is frozen
and it competes with the others as it is.

Log-probabilities only fall as words are added, so a plain sum favours short outputs.
The final choice divides each score by ``length ** alpha`` (``alpha = 0`` is the plain
sum, ``alpha = 1`` the mean per word), a *length penalty* as in Wu et al. (2016).

Everything is batched: ``batch`` sentences times ``k`` hypotheses are decoded as
``batch * k`` rows of one tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..attention import causal_mask, padding_mask
from ..checks import check_int, check_number
from ..models.seq2seq import EncoderDecoder

__all__ = ["beam_search", "next_token_logits"]


def next_token_logits(
    model: EncoderDecoder, tokens: Tensor, memory: Tensor, mask: Tensor
) -> Tensor:
    """Logits ``(rows, tgt_vocab)`` of the token after each prefix ``(rows, t)``.

    The same computation as ``model.decode(...)[:, -1]``, but the output layer (the
    largest matrix) is applied to the last position only, not to all ``t``.
    """
    t = tokens.size(1)
    self_mask = causal_mask(t, device=tokens.device) & padding_mask(
        tokens != model.config.pad_id
    )
    x = model._embed(model.tgt_emb, tokens)
    for block in model.decoder:
        x = block(x, mask=self_mask, memory=memory, memory_mask=mask)
    return model.out(model.dec_ln(x[:, -1]))


@torch.no_grad()
def beam_search(
    model: EncoderDecoder,
    src: Tensor,
    bos_id: int,
    eos_id: int,
    max_len: int,
    beam_size: int = 4,
    alpha: float = 1.0,
) -> Tensor:
    """Translate ``src`` with beam search; returns the best hypothesis per sentence.

    Args:
        model: a trained :class:`EncoderDecoder`.
        src: source ids ``(batch, src_len)``, padded with ``config.pad_id``.
        bos_id, eos_id: start and end tokens of the target vocabulary.
        max_len: most tokens per translation, EOS included (at most
            ``config.max_len``).
        beam_size: hypotheses kept per sentence; 1 is greedy decoding.
        alpha: length penalty exponent used to pick the final hypothesis.

    Returns:
        ``(batch, n)`` ids without BOS, ``n <= max_len``; each row ends with EOS (unless
        it ran out of length) and is padded with ``config.pad_id`` after it.
    """
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"model must be an EncoderDecoder, got {type(model).__name__}")
    c = model.config
    check_int("max_len", max_len, minimum=1, maximum=c.max_len)
    check_int("bos_id", bos_id, minimum=0, maximum=c.tgt_vocab_size - 1)
    check_int("eos_id", eos_id, minimum=0, maximum=c.tgt_vocab_size - 1)
    k = check_int("beam_size", beam_size, minimum=1)
    check_number("alpha", alpha, minimum=0)
    was_training = model.training
    model.eval()
    try:
        mask = model._check_source(src, None)  # (batch, 1, 1, src_len)
        batch = src.size(0)
        memory = model._encode(src, mask)  # (batch, src_len, d_model)
        # Each sentence's encoding repeated k times: rows b*k .. b*k+k-1 are sentence b.
        memory = memory.repeat_interleave(k, dim=0)
        mask = mask.repeat_interleave(k, dim=0)
        tokens = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=src.device)
        # Total log-probability of each hypothesis. At the start all k hypotheses are
        # the same lone BOS: only the first may grow, or the beam fills with copies.
        scores = torch.full((batch, k), float("-inf"), device=src.device)
        scores[:, 0] = 0.0
        finished = torch.zeros(batch, k, dtype=torch.bool, device=src.device)
        lengths = torch.zeros(batch, k, device=src.device)
        for _ in range(max_len):
            logits = next_token_logits(model, tokens, memory, mask)  # (batch*k, vocab)
            logp = torch.log_softmax(logits.float(), dim=-1).view(batch, k, -1)
            # A finished hypothesis may only be extended by padding, at no cost, so it
            # keeps its score and stays in the race unchanged.
            done = finished[..., None]
            logp = logp.masked_fill(done, float("-inf"))
            logp[..., c.pad_id] = torch.where(finished, 0.0, float("-inf"))
            candidates = (scores[..., None] + logp).view(batch, -1)  # (batch, k*vocab)
            scores, flat = candidates.topk(k, dim=-1)  # (batch, k) best extensions
            beam = flat // logp.size(-1)  # which hypothesis each came from
            word = flat % logp.size(-1)  # and which word it added
            rows = (beam + torch.arange(batch, device=src.device)[:, None] * k).view(-1)
            tokens = torch.cat([tokens[rows], word.view(-1, 1)], dim=1)
            was_done = finished.gather(1, beam)
            lengths = lengths.gather(1, beam) + (~was_done).float()
            finished = was_done | (word == eos_id)
            if finished.all():
                break
        best = (scores / lengths.clamp(min=1) ** alpha).argmax(dim=-1)  # (batch,)
        rows = best + torch.arange(batch, device=src.device) * k
        return tokens[rows, 1:]
    finally:
        model.train(was_training)
