"""Chinese-to-English translation (chapter 6): data, tokens, beam search, a translator.

* :mod:`.data` — Tatoeba pairs in simplified characters, split by sentence groups so
  that no test sentence was seen in training;
* :mod:`.vocab` — Chinese characters in, English words out;
* :mod:`.batches` — length-bucketed batches for the trainer;
* :mod:`.beam` — beam search, written out;
* :mod:`.translator` — a trained model with its vocabularies, ``translate`` and BLEU;
* :mod:`.command` — the ``python -m lm_course translate`` command.
"""

from .translator import Translator, bleu, load_translator, recipe_for

__all__ = ["Translator", "bleu", "load_translator", "recipe_for"]
