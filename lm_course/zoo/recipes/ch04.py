"""Chapter 4's training runs: the character-level GPT and the LSTM it is compared with.

* ``ch04-gpt`` -- the chapter's Transformer, trained on a CPU within the notebook's
  budget: 2 pre-LN layers of width 128 (4 heads, feed-forward width 512: the 1 : 4 shape
  of article 002 §4.3's 512 / 2048), context 64, 1,200 steps of 32 windows. Chapters 7
  and 8 load it. Target: a validation loss of at most 1.75 nats per character.
* ``ch04-gpt-gpu`` -- the same model family at GPU size (6 layers of width 384, context
  256, dropout 0.2, 1,500 steps of 64 windows, bfloat16, compiled; it overfits after
  about 1,500: 5,000 steps ended at 1.70). Target: at most 1.47.
* ``ch04-lstm`` and ``ch04-lstm-gpu`` -- an LSTM with as many parameters as the GPT of
  the same machine, trained for the same *wall-clock time*: its step count is the GPT's
  times the ratio of their measured step times (:data:`STEP_TIMES`, recorded data), so
  the comparison is deterministic and needs no clock at run time.

:func:`recipe_for` picks the GPU recipe on a CUDA device and the CPU one elsewhere, so a
notebook runs unchanged on both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...charlm import shakespeare_batches
from ...models.gpt import GPT, GPTConfig
from ...models.lstm import LSTMConfig, LSTMLanguageModel
from ...training import History, TrainConfig, train
from ..recipe import Recipe, register
from . import GPT_CODE

__all__ = [
    "STEP_TIMES",
    "PARALLEL_TIMES",
    "GPU_RUNS",
    "TARGETS",
    "GPT_CPU",
    "GPT_GPU",
    "LSTM_CPU",
    "LSTM_GPU",
    "recipe_for",
    "lstm_steps",
]

DATA = ("tinyshakespeare/input.txt",)
VOCAB = 65  # distinct characters in Tiny Shakespeare; fit checks it

#: Validation loss (nats per character) each GPT recipe is meant to reach.
TARGETS = {"ch04-gpt": 1.75, "ch04-gpt-gpu": 1.47}

#: Measured time of one training step, GPT and matched LSTM, per kind of device: data,
#: not measured at run time, so that the matched-time comparison is reproducible. The
#: LSTM trains for ``gpt_steps * gpt_ms / lstm_ms`` steps: the GPT's wall-clock time.
STEP_TIMES: dict[str, dict[str, Any]] = {
    # Whole training runs, evaluations included, one after the other on an idle
    # machine (2026-12-05): ch04-gpt 1,200 steps in 95.3 s; ch04-lstm 2,632 steps in
    # 183.0 s. (An earlier figure of 31 ms, from timing a bare 256-unit LSTM step and
    # scaling it, gave the LSTM twice the GPT's time.)
    "cpu": {
        "machine": "2-core x86-64 CPU, 1 thread (torch 2.13)",
        "gpt_ms": 79.4,
        "lstm_ms": 69.5,
    },
    "cuda": {
        "machine": "NVIDIA H200 (torch 2.11.0, bfloat16 GPT)",
        "gpt_ms": 20.2,
        "lstm_ms": 43.0,
    },
}

#: One training step (forward, backward, AdamW) of the CPU recipes' GPT and LSTM, with
#: 4,096 tokens a step cut into sequences of ``seq_len``, in milliseconds: recorded on a
#: GPU, where positions can be computed in parallel (chapter 4, section 7).
PARALLEL_TIMES: dict[str, Any] = {
    "machine": "NVIDIA H200 (torch 2.11.0, float32)",
    "seq_len": [32, 64, 128, 256, 512],
    "GPT": [5.63, 5.68, 5.97, 5.46, 5.31],
    "LSTM": [5.38, 5.53, 9.3, 13.79, 23.9],
}

#: The GPU recipe as it ran on a GPU (the book's stored outputs come from a CPU): its
#: final validation loss, and the run of 5,000 steps it replaced, which overfitted.
GPU_RUNS: dict[str, Any] = {
    "machine": "NVIDIA H200 (torch 2.11.0, bfloat16)",
    "ch04-gpt-gpu": {"steps": 1500, "val_loss": 1.4615, "seconds": 50.3},
    "5,000 steps": {"best_val_loss": 1.4693, "best_step": 1500, "val_loss": 1.7001},
}

_GPT_STEPS = {"cpu": 1200, "cuda": 1500}


def lstm_steps(kind: str) -> int:
    """The LSTM's step count that matches the GPT's wall-clock time on ``kind``."""
    times = STEP_TIMES[kind]
    return round(_GPT_STEPS[kind] * times["gpt_ms"] / times["lstm_ms"])


_ADAMW = dict(betas=[0.9, 0.99], weight_decay=0.1, grad_clip=1.0)

GPT_CONFIGS: dict[str, dict[str, Any]] = {
    "ch04-gpt": {
        "model": dict(
            vocab_size=VOCAB,
            block_size=64,
            n_layer=2,
            n_head=4,
            d_model=128,
            d_ff=512,
            dropout=0.0,
        ),
        "batch_size": 32,
        "train": dict(
            max_steps=_GPT_STEPS["cpu"],
            lr=6e-3,
            min_lr=6e-4,
            warmup_steps=100,
            eval_every=200,
            eval_batches=20,
            log_every=10,
            precision="float32",
            **_ADAMW,
        ),
    },
    "ch04-gpt-gpu": {
        "model": dict(
            vocab_size=VOCAB,
            block_size=256,
            n_layer=6,
            n_head=6,
            d_model=384,
            d_ff=1536,
            dropout=0.2,
        ),
        "batch_size": 64,
        "train": dict(
            max_steps=_GPT_STEPS["cuda"],
            lr=1e-3,
            min_lr=1e-4,
            warmup_steps=100,
            eval_every=250,
            eval_batches=50,
            log_every=50,
            precision="auto",
            compile=True,
            **_ADAMW,
        ),
    },
}

# Parameters, everything counted: one LSTM layer of 280 units has 409,945, the CPU GPT
# 410,368; two layers of 880 on embeddings of 384 have 10,740,785, the GPU GPT
# 10,745,088 (tests/test_ch04_recipes.py checks both stay within 1 %).
LSTM_CONFIGS: dict[str, dict[str, Any]] = {
    "ch04-lstm": {
        "model": dict(vocab_size=VOCAB, d_embed=64, d_hidden=280, n_layers=1),
        "block_size": 64,
        "batch_size": 32,
        "train": dict(
            max_steps=lstm_steps("cpu"),
            lr=5e-3,
            warmup_steps=20,
            weight_decay=0.0,
            grad_clip=1.0,
            eval_every=lstm_steps("cpu") // 5,
            eval_batches=20,
            log_every=10,
            precision="float32",
        ),
    },
    "ch04-lstm-gpu": {
        "model": dict(
            vocab_size=VOCAB, d_embed=384, d_hidden=880, n_layers=2, dropout=0.2
        ),
        "block_size": 256,
        "batch_size": 64,
        "train": dict(
            max_steps=lstm_steps("cuda"),
            lr=2e-3,
            warmup_steps=100,
            weight_decay=0.0,
            grad_clip=1.0,
            eval_every=lstm_steps("cuda") // 10,
            eval_batches=50,
            log_every=50,
            precision="float32",
        ),
    },
}


def build_gpt(config: dict[str, Any]) -> GPT:
    """The untrained GPT of a ``ch04-gpt*`` config."""
    return GPT(GPTConfig(**config["model"]))


def build_lstm(config: dict[str, Any]) -> LSTMLanguageModel:
    """The untrained LSTM of a ``ch04-lstm*`` config."""
    return LSTMLanguageModel(LSTMConfig(**config["model"]))


def fit(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device
) -> tuple[History, dict[str, Any]]:
    """Train on the fixed 90/10 split of Tiny Shakespeare; metrics: final losses."""
    block_size = config.get("block_size") or config["model"]["block_size"]
    tokenizer, batches = shakespeare_batches(block_size, config["batch_size"])
    if tokenizer.vocab_size != config["model"]["vocab_size"]:
        raise ValueError(
            f"the text has {tokenizer.vocab_size} distinct characters, the recipe's "
            f"model {config['model']['vocab_size']}"
        )
    settings = TrainConfig(**config["train"], seed=seed, device=str(device))
    history = train(model, batches, settings)
    params = sum(p.numel() for p in model.parameters())
    metrics = {
        "val_loss": history.val_loss[-1],
        "train_loss": history.eval_train_loss[-1],
        "parameters": params,
    }
    return history, metrics


def _register(name: str, build: Any, configs: dict[str, Any], about: str) -> Recipe:
    return register(
        Recipe(
            name=name,
            build=build,
            fit=fit,
            config=configs[name],
            data=DATA,
            seed=0,
            code=(*GPT_CODE, "lm_course.models.lstm"),
            description=about,
        )
    )


GPT_CPU = _register(
    "ch04-gpt", build_gpt, GPT_CONFIGS, "Chapter 4's GPT: 2 x 128, 1,200 CPU steps."
)
GPT_GPU = _register(
    "ch04-gpt-gpu", build_gpt, GPT_CONFIGS, "Chapter 4's GPT at GPU size: 6 x 384."
)
LSTM_CPU = _register(
    "ch04-lstm",
    build_lstm,
    LSTM_CONFIGS,
    "An LSTM matched to ch04-gpt in size and time.",
)
LSTM_GPU = _register(
    "ch04-lstm-gpu", build_lstm, LSTM_CONFIGS, "An LSTM matched to ch04-gpt-gpu."
)


def recipe_for(model: str, device: torch.device | str) -> str:
    """The recipe name of ``model`` (``"gpt"`` or ``"lstm"``) for ``device``.

    A CUDA device gets the GPU recipe, anything else the CPU one.
    """
    if model not in ("gpt", "lstm"):
        raise ValueError(f"model must be 'gpt' or 'lstm', got {model!r}")
    kind = torch.device(device).type
    return f"ch04-{model}" + ("-gpu" if kind == "cuda" else "")
