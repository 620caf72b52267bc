"""Fine-tuning a pretrained trunk: heads, what trains, adapters, LoRA, linear baselines.

* :mod:`.heads` -- pooling and a classification head on an encoder or a GPT;
* :mod:`.methods` -- full fine-tuning, probe, adapters, LoRA or scratch in one call;
* :mod:`.batches` -- labelled sentences as batches, and accuracy;
* :mod:`.freeze` -- train only some parts, count them, measure how far weights moved;
* :mod:`.adapters` -- Houlsby adapters inserted after each sub-layer;
* :mod:`.lora` -- LoRA, a low-rank update beside a frozen linear layer;
* :mod:`.linear` -- logistic regression: the bag-of-words baseline, the linear probe;
* :mod:`.prompting` -- few-shot prompts, and scoring labels as continuations.
"""

from .adapters import Adapted, Adapter, add_adapters
from .batches import SentenceBatches, accuracy, predict
from .freeze import (
    count_parameters,
    layer_group,
    layer_norms,
    relative_change,
    snapshot,
    train_only,
)
from .heads import POOLINGS, Classifier, pool
from .linear import BagOfWords, LogisticRegression, fit_logistic_regression
from .lora import LoRALinear, add_lora
from .methods import METHODS, fine_tuning_config, setup
from .prompting import TEMPLATE, few_shot_prompt, option_logprobs

__all__ = [
    "METHODS",
    "fine_tuning_config",
    "POOLINGS",
    "TEMPLATE",
    "Adapted",
    "Adapter",
    "BagOfWords",
    "Classifier",
    "LoRALinear",
    "LogisticRegression",
    "SentenceBatches",
    "accuracy",
    "add_adapters",
    "add_lora",
    "count_parameters",
    "few_shot_prompt",
    "fit_logistic_regression",
    "layer_group",
    "layer_norms",
    "option_logprobs",
    "pool",
    "predict",
    "relative_change",
    "setup",
    "snapshot",
    "train_only",
]
