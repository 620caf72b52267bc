"""The pretraining corpus: four sources, and held-out text the training part never
contains (in particular, no sentence of the sentiment test split)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm_course.data import sentence_polarity, tiny_shakespeare
from lm_course.data.corpus import SOURCES, english_corpus, scitldr_splits


@pytest.fixture(scope="module")
def corpus(shared_data: Path):  # noqa: ANN201
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LM_COURSE_DATA", str(shared_data))
        yield english_corpus(seed=0)


def test_every_source_has_training_and_held_out_documents(corpus) -> None:
    for source in SOURCES:
        assert corpus.train[source] and corpus.heldout[source]
    sizes = corpus.characters("train")
    assert 3_000_000 < sum(sizes.values()) < 3_200_000
    assert len(corpus.documents("heldout")) == sum(
        len(corpus.heldout[s]) for s in SOURCES
    )


def test_no_held_out_or_test_sentence_is_in_the_training_part(corpus) -> None:
    train = set(corpus.train["movie_reviews"])
    test = {ex.text for ex in sentence_polarity(seed=0).test}
    assert not train & test, "the sentiment test split leaked into pretraining"
    assert not train & set(corpus.heldout["movie_reviews"])
    assert not set(corpus.train["scitldr"]) & set(corpus.heldout["scitldr"])
    _, _, scitldr_test = scitldr_splits(0)
    everything = set(corpus.documents("train")) | set(corpus.documents("heldout"))
    assert not everything & set(scitldr_test)


def test_shakespeare_is_cut_where_the_character_models_cut_it(corpus) -> None:
    text = tiny_shakespeare()
    cut = len(text) - int(len(text) * 0.1)
    assert "".join(corpus.train["shakespeare"]).replace("\n", "") in text[:cut].replace(
        "\n", ""
    )
    assert corpus.heldout["shakespeare"][-1] in text[cut:]
    assert corpus.train["shakespeare"][0].startswith("First Citizen:")


def test_split_names_are_checked(corpus) -> None:
    with pytest.raises(ValueError, match="split"):
        corpus.documents("test")
    assert "movie_reviews=8530+1066" in repr(corpus)
