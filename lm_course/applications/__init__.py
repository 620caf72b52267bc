"""Chapter 6's applications, beyond translation (:mod:`lm_course.translation`).

* :mod:`.monitoring` -- sentiment over a stream: rolling and adjusted shares,
  reliability bins, expected calibration error, temperature scaling;
* :mod:`.summaries` -- sentence splitting, lead and oracle extracts, ROUGE with the
  ``rouge-score`` package (a character tokenizer for Chinese);
* :mod:`.continuations` -- what a causal model writes after a prompt, and how much of
  it repeats itself.
"""

from .continuations import (
    continuation_ids,
    continue_prompt,
    prompt_ids,
    repeated_ngram_share,
)
from .monitoring import (
    Reliability,
    adjusted_share,
    drifting_stream,
    expected_calibration_error,
    fit_temperature,
    reliability,
    rolling_share,
)
from .summaries import (
    CharTokenizer,
    lead,
    oracle_sentence,
    rouge,
    scorer,
    split_sentences,
)

__all__ = [
    "CharTokenizer",
    "Reliability",
    "adjusted_share",
    "continuation_ids",
    "continue_prompt",
    "drifting_stream",
    "expected_calibration_error",
    "fit_temperature",
    "lead",
    "oracle_sentence",
    "prompt_ids",
    "reliability",
    "repeated_ngram_share",
    "rolling_share",
    "rouge",
    "scorer",
    "split_sentences",
]
