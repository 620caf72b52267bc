"""One wording for every wrong argument: the shared checks and the configs."""

import json

import pytest
import torch

from lm_course.checks import (
    check_int,
    check_logits,
    check_number,
    check_targets,
    check_token_ids,
    config_from_dict,
)
from lm_course.models import EncoderConfig, GPTConfig, LSTMConfig, Seq2SeqConfig

CONFIGS = {
    "GPTConfig": (GPTConfig, {"vocab_size": 10, "block_size": 8}),
    "LSTMConfig": (LSTMConfig, {"vocab_size": 10}),
    "EncoderConfig": (EncoderConfig, {"vocab_size": 10, "max_len": 8}),
    "Seq2SeqConfig": (Seq2SeqConfig, {"src_vocab_size": 10, "tgt_vocab_size": 10}),
}


@pytest.mark.parametrize("kind", CONFIGS)
@pytest.mark.parametrize(
    ("field", "value", "error", "got"),
    [
        ("dropout", "0.1", TypeError, r"got '0\.1' \(str\)"),
        ("dropout", None, TypeError, r"got None \(NoneType\)"),
        ("dropout", True, TypeError, r"got True \(bool\)"),
        ("dropout", float("nan"), ValueError, "got nan"),
        ("dropout", float("inf"), ValueError, "got inf"),
        ("dropout", -0.1, ValueError, r"got -0\.1"),
        ("vocab_size", True, TypeError, r"got True \(bool\)"),
        ("vocab_size", None, TypeError, r"got None \(NoneType\)"),
        ("vocab_size", 10.0, TypeError, r"got 10\.0"),
        ("vocab_size", "10", TypeError, r"got '10' \(str\)"),
        ("vocab_size", 0, ValueError, "got 0"),
    ],
)
def test_every_config_refuses_wrong_types_with_one_wording(
    kind, field, value, error, got
):
    cls, required = CONFIGS[kind]
    if kind == "Seq2SeqConfig" and field == "vocab_size":
        field = "src_vocab_size"
    what = "an integer >= 1" if "vocab" in field else "a finite number >= 0 and < 1"
    with pytest.raises(error, match=rf"^{kind}\.{field} must be {what}, {got}"):
        cls(**{**required, field: value})


def test_configs_keep_numpy_integers_as_plain_ints():
    numpy = pytest.importorskip("numpy")
    config = GPTConfig(vocab_size=numpy.int64(10), block_size=8)
    assert type(config.vocab_size) is int
    json.dumps(vars(config))  # a NumPy integer would not serialise


def test_scalar_checks():
    assert check_int("n", 3, minimum=1) == 3
    with pytest.raises(TypeError, match=r"n must be an integer in \[1, 4\], got 2\.5"):
        check_int("n", 2.5, minimum=1, maximum=4)
    assert check_number("lr", 1, minimum=0, strict_min=True) == 1.0
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got 0"):
        check_number("lr", 0, minimum=0, strict_min=True)


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", CONFIGS)
def test_config_from_dict_names_the_file_and_the_field(kind, tmp_path):
    cls, required = CONFIGS[kind]
    path = tmp_path / "state.json"
    config = cls.from_dict(required, source=path)
    assert config == cls(**required)
    with pytest.raises(
        ValueError,
        match=rf"unknown {kind} field 'n_layers_typo' in .*state\.json; known fields: "
        rf".*Remove the field or write the file again",
    ):
        cls.from_dict({**required, "n_layers_typo": 3}, source=path)
    missing = next(iter(required))
    with pytest.raises(
        ValueError, match=rf"{kind} in .*state\.json has no field '{missing}'"
    ):
        cls.from_dict({k: v for k, v in required.items() if k != missing}, path)
    with pytest.raises(TypeError, match=r"dropout must be .* in .*state\.json$"):
        cls.from_dict({**required, "dropout": "0.1"}, source=path)
    with pytest.raises(ValueError, match=rf"{kind} in .*state\.json must be a JSON"):
        config_from_dict(cls, [1, 2], source=path)


# ---------------------------------------------------------------------------- tensors


def test_token_ids_on_the_wrong_device_are_named():
    idx = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"idx is on cpu but the model is on meta"):
        check_token_ids(idx, 5, device=torch.device("meta"))
    # A meta tensor has no values to read: the shape checks still run, nothing more.
    check_token_ids(idx.to("meta"), 5, device=torch.device("meta"))


@pytest.mark.parametrize(
    ("targets", "error", "message"),
    [
        (torch.tensor([[0.0, 1.7]]), TypeError, r"targets must hold integer .*float32"),
        (torch.tensor([[True, False]]), TypeError, r"integer class ids.*torch.bool"),
        (
            [[0, 1]],
            TypeError,
            r"targets must be a tensor of class ids, got \[\[0, 1\]\]",
        ),
        (
            torch.tensor([0, 1]),
            ValueError,
            r"targets must have shape \(1, 2\), got \(2,",
        ),
        (torch.tensor([[0, 5]]), ValueError, r"targets contains 5, outside \[0, 4\]"),
        (torch.tensor([[-1, 0]]), ValueError, r"targets contains -1, .*\(use -100"),
    ],
)
def test_targets_are_checked_like_inputs(targets, error, message):
    with pytest.raises(error, match=message):
        check_targets(targets, (1, 2), 5)


def test_ignored_targets_pass():
    check_targets(torch.tensor([[-100, 4]]), (1, 2), 5)
    check_targets(torch.full((1, 2), -100), (1, 2), 5)


def test_logits_a_softmax_cannot_use_are_refused():
    good = torch.tensor([[0.0, float("-inf")], [1.0, 2.0]])
    assert check_logits(good) is good
    for row, problem in [
        ([float("nan"), 0.0], "contains NaN"),
        ([float("inf"), 0.0], r"contains \+inf"),
        ([float("-inf"), float("-inf")], "is -inf everywhere"),
    ]:
        bad = torch.tensor([[0.0, 1.0], row])
        with pytest.raises(ValueError, match=rf"logits row 1 {problem}"):
            check_logits(bad)
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        check_logits(torch.tensor([[1, 2]]))
