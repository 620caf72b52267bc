"""The course's data: a registry of pinned files, a verified fetcher, and loaders."""

from .fetch import (
    ENV_CACHE,
    ENV_DATA,
    ENV_MIRROR,
    DataIntegrityError,
    DataUnavailableError,
    cache_dir,
    fetch,
    sha256_of,
)
from .loaders import (
    LabelledSentence,
    QAExample,
    SentencePair,
    SummaryExample,
    chinese_classics,
    cmrc2018,
    csl_titles,
    scitldr,
    sentence_polarity,
    tatoeba_cmn_eng,
    tiny_shakespeare,
    xquad,
)
from .registry import DATASETS, FILES, DataFile, Dataset, data_file, dataset
from .splits import Splits, split_examples

__all__ = [
    "DATASETS",
    "ENV_CACHE",
    "ENV_DATA",
    "ENV_MIRROR",
    "FILES",
    "DataFile",
    "DataIntegrityError",
    "DataUnavailableError",
    "Dataset",
    "LabelledSentence",
    "QAExample",
    "SentencePair",
    "Splits",
    "SummaryExample",
    "cache_dir",
    "chinese_classics",
    "cmrc2018",
    "csl_titles",
    "data_file",
    "dataset",
    "fetch",
    "scitldr",
    "sentence_polarity",
    "sha256_of",
    "split_examples",
    "tatoeba_cmn_eng",
    "tiny_shakespeare",
    "xquad",
]
