"""A damaged or incomplete tokenizer file names the file, the field and what to do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lm_course.tokenizers import BPETokenizer, CharTokenizer, SentencePieceTokenizer

KINDS = {
    "CharTokenizer": (lambda: CharTokenizer.from_text("abc", unk="?"), "chars"),
    "BPETokenizer": (lambda: BPETokenizer.train("low lower " * 20, 260), "merges"),
}


def saved(kind: str, tmp_path: Path) -> tuple[type, Path, dict]:
    make, _ = KINDS[kind]
    tokenizer = make()
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    return type(tokenizer), path, json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_cut_short_is_not_valid_json(kind, tmp_path):
    cls, path, _ = saved(kind, tmp_path)
    path.write_text(path.read_text(encoding="utf-8")[:-3], encoding="utf-8")
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))} is not valid JSON \(.* at line \d+, column "
        rf"\d+\): the file is damaged; write it again with {kind}\.save",
    ):
        cls.load(path)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_without_its_vocabulary(kind, tmp_path):
    cls, path, data = saved(kind, tmp_path)
    field = KINDS[kind][1]
    del data[field]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))} has no field '{field}' \(the vocabulary.*\): "
        rf"the file is incomplete; write it again with {kind}\.save",
    ):
        cls.load(path)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_field_and_a_missing_file(kind, tmp_path):
    cls, path, data = saved(kind, tmp_path)
    path.write_text(json.dumps({**data, "lowercase": True}), encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"has an unknown field 'lowercase'.*another version"
    ):
        cls.load(path)
    with pytest.raises(FileNotFoundError, match=rf"no {kind} file at .*missing\.json"):
        cls.load(tmp_path / "missing.json")


def test_a_vocabulary_of_the_wrong_shape_names_the_file(tmp_path):
    cls, path, data = saved("CharTokenizer", tmp_path)
    path.write_text(json.dumps({**data, "chars": ["a", "bc"]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer\.json: chars\[1\]='bc' is not a"):
        cls.load(path)
    path.write_text(json.dumps({**data, "chars": None}), encoding="utf-8")
    with pytest.raises(TypeError, match=r"tokenizer\.json: chars must be a string"):
        cls.load(path)
    cls, path, data = saved("BPETokenizer", tmp_path)
    path.write_text(json.dumps({**data, "merges": [[97, 98]]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"field 'merges' must be a list of \[a, b, "):
        cls.load(path)


def test_a_sentencepiece_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "spm.model"
    path.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(ValueError, match=r"spm\.model is not a SentencePiece model"):
        SentencePieceTokenizer.load(path)
