"""A trained translator: the model, its two vocabularies, and ``translate``.

::

    from lm_course.translation import load_translator

    translator = load_translator()            # from the model cache (trained if cold)
    translator.translate(["我不会说法语。"])    # -> ["I can't speak French."]

:func:`bleu` scores translations with sacreBLEU against one or more references each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sacrebleu
import torch

from ..checks import check_choice, check_int
from ..models.seq2seq import EncoderDecoder
from .batches import encode_source
from .beam import beam_search
from .data import simplify
from .vocab import Vocab, detokenize_en, tokenize_en

__all__ = ["Translator", "bleu", "cross_attention", "load_translator", "recipe_for"]


@dataclass
class Translator:
    """An :class:`EncoderDecoder` with its Chinese and English vocabularies.

    ``translate(sentences)`` takes Chinese sentences in either script and returns
    English ones; ``batch_size`` sentences are decoded at a time.
    """

    model: EncoderDecoder
    src_vocab: Vocab
    tgt_vocab: Vocab
    batch_size: int = 128
    record: Any = None  # the zoo's Record of its training, when loaded from the cache

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """Chinese sentences as source ids ``(batch, src_len)`` on the model's device.

        Sentences are simplified first; unknown characters become ``<unk>``.
        """
        max_len = self.model.config.max_len
        src = encode_source([simplify(s) for s in sentences], self.src_vocab, max_len)
        return src.to(self.model.out.weight.device)

    def translate(
        self, sentences: Sequence[str], beam_size: int = 1, alpha: float = 1.0
    ) -> list[str]:
        """English translations of ``sentences``, greedy (``beam_size=1``) or beam.

        An empty (or all-space) sentence gives an empty translation. Sentences are
        translated in batches of similar length (and returned in the order given): a
        batch decodes until its longest output is done, so mixing a 3-character
        sentence with a 30-character one wastes most of the work (three times the
        time on the chapter's test set).
        """
        if isinstance(sentences, str):
            raise TypeError("sentences must be a list of strings, not one string")
        check_int("beam_size", beam_size, minimum=1)
        out = [""] * len(sentences)
        todo = [i for i, s in enumerate(sentences) if s.strip()]
        todo.sort(key=lambda i: len(sentences[i].strip()))  # stable: deterministic
        for start in range(0, len(todo), self.batch_size):
            index = todo[start : start + self.batch_size]
            for i, row in zip(index, self.decode_ids(
                self.encode([sentences[i] for i in index]), beam_size, alpha
            ), strict=True):  # fmt: skip
                out[i] = detokenize_en(self.tgt_vocab.decode(row))
        return out

    @torch.no_grad()
    def score(self, sources: Sequence[str], translations: Sequence[str]) -> list[float]:
        """Total log-probability (nats) the model gives each translation, EOS included.

        This is the quantity greedy and beam search try to maximise, so it tells which
        of two outputs for the same source the model prefers.
        """
        if len(sources) != len(translations):
            raise ValueError(
                f"give one translation per source, got {len(sources)} sources and "
                f"{len(translations)} translations"
            )
        v, model = self.tgt_vocab, self.model
        out = []
        for source, target in zip(sources, translations, strict=True):
            ids = v.encode(tokenize_en(target))[: model.config.max_len - 1]
            tgt_in = torch.tensor([[v.bos_id, *ids]], device=model.out.weight.device)
            tgt_out = torch.tensor([[*ids, v.eos_id]], device=tgt_in.device)
            was_training = model.training
            model.eval()
            logits, _ = model(self.encode([source]), tgt_in)
            model.train(was_training)
            logp = torch.log_softmax(logits[0].float(), dim=-1)
            out.append(logp.gather(1, tgt_out[0][:, None]).sum().item())
        return out

    def decode_ids(
        self, src: torch.Tensor, beam_size: int = 1, alpha: float = 1.0
    ) -> list[list[int]]:
        """Target ids per row of ``src`` ``(batch, src_len)``, EOS and padding kept.

        ``beam_size=1`` is greedy decoding (the same result as
        :func:`~lm_course.models.seq2seq.greedy_decode`, tested). Outputs are capped
        at ``2 * src_len + 10`` tokens: a translation that long has gone astray.
        """
        v = self.tgt_vocab
        max_len = min(self.model.config.max_len, 2 * src.size(1) + 10)
        ids = beam_search(
            self.model, src, v.bos_id, v.eos_id, max_len, beam_size, alpha
        )
        return ids.tolist()


@torch.no_grad()
def cross_attention(translator: Translator, source: str, target: str) -> torch.Tensor:
    """Cross-attention weights ``(layers, heads, tgt_len + 1, src_len)`` of a pair.

    The decoder reads ``[BOS] + target`` (teacher forcing); row ``i`` says where in the
    source the decoder looked while predicting target token ``i`` (the last row: EOS).
    ``target`` is an English sentence (for instance the model's own translation), cut
    into words as the model's vocabulary does.
    """
    model, v = translator.model, translator.tgt_vocab
    src = translator.encode([source])
    tgt = torch.tensor([[v.bos_id, *v.encode(tokenize_en(target))]], device=src.device)
    layers = [block.cross_attn for block in model.decoder]
    was_training = model.training
    model.eval()
    try:
        for layer in layers:
            layer.keep_weights = True
        model(src, tgt)
        return torch.stack([layer.last_weights[0] for layer in layers]).cpu()
    finally:
        for layer in layers:
            layer.keep_weights = False
            layer.last_weights = None
        model.train(was_training)


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    tokenize: str = "13a",
    lowercase: bool = False,
    *,
    signature: bool = False,
) -> sacrebleu.metrics.bleu.BLEUScore | tuple[sacrebleu.metrics.bleu.BLEUScore, str]:
    """Corpus BLEU of ``hypotheses``, each against its own list of references.

    sacreBLEU's default settings: ``13a`` tokenisation (the WMT standard, applied to
    detokenised text), case-sensitive, exponential smoothing. A sentence may have any
    number of references (missing ones are passed to sacreBLEU as ``None``).
    With ``signature=True`` it also returns sacreBLEU's signature string, which says
    exactly how the score was computed.
    """
    check_choice("tokenize", tokenize, ("13a", "intl", "none", "char"))
    if len(hypotheses) != len(references) or not all(references):
        raise ValueError(
            "give one non-empty list of references per hypothesis, got "
            f"{len(hypotheses)} hypotheses and {len(references)} reference lists"
        )
    n = max(len(r) for r in references)
    streams = [[r[k] if k < len(r) else None for r in references] for k in range(n)]
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase)
    score = metric.corpus_score(list(hypotheses), streams)
    return (score, str(metric.get_signature())) if signature else score


def recipe_for(device: torch.device | str, size: str | None = None) -> str:
    """The translation recipe for ``device``: the CPU one, or the bigger GPU one.

    ``size="tiny"`` names the seconds-long recipe the tests use.
    """
    if size is not None:
        check_choice("size", size, ("tiny",))
        return "ch06-translator-tiny"
    cuda = torch.device(device).type == "cuda"
    return "ch06-translator-gpu" if cuda else "ch06-translator"


def load_translator(
    recipe: str | None = None, device: str | torch.device = "auto"
) -> Translator:
    """The chapter's translator from the model cache (trained first when it is cold).

    ``recipe`` defaults to :func:`recipe_for` the device.
    """
    from .. import zoo
    from ..training import pick_device

    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    model, record = zoo.load(recipe or recipe_for(device), device=device)
    return Translator(
        model,  # type: ignore[arg-type]
        Vocab(record.metrics["src_vocab"]),
        Vocab(record.metrics["tgt_vocab"]),
        record=record,
    )
