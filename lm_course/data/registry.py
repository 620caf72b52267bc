"""Every data file the course uses: where it comes from, its hash, its license.

The entries mirror ``shared/data/SOURCES.md``: each file is pinned to a commit of a
public repository, so its sha256 never changes. A file whose hash does not match is
never used.
"""

from __future__ import annotations

from dataclasses import dataclass

_GH = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class DataFile:
    """One downloadable file.

    ``path`` is where the file lives below a data folder (``LM_COURSE_DATA``) or the
    cache, for example ``"tinyshakespeare/input.txt"``.
    """

    path: str
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Dataset:
    """A named data set: its files, license and how to cite it."""

    name: str
    title: str
    files: tuple[DataFile, ...]
    license: str
    citation: str
    homepage: str


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            name="tinyshakespeare",
            title="Tiny Shakespeare",
            files=(
                DataFile(
                    "tinyshakespeare/input.txt",
                    f"{_GH}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
                    "/data/tinyshakespeare/input.txt",
                    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                    1_115_394,
                ),
            ),
            license="Text: public domain (Shakespeare). Repository: MIT.",
            citation="Andrej Karpathy, char-rnn (2015), https://github.com/karpathy/char-rnn",
            homepage="https://github.com/karpathy/char-rnn",
        ),
        Dataset(
            name="sentence_polarity",
            title="Movie-review sentence polarity v1.0",
            files=(
                DataFile(
                    "sentence_polarity/sentence_polarity.zip",
                    f"{_GH}/nltk/nltk_data/5db857e6f7df11eabb5e5665836db9ec8df07e28"
                    "/packages/corpora/sentence_polarity.zip",
                    "6e1ed4405b65c7eabf1d199a7f7c437091ac21da0ea7467b410a74062574566b",
                    490_256,
                ),
            ),
            license="CC BY 4.0",
            citation=(
                "Bo Pang and Lillian Lee. Seeing stars: Exploiting class relationships "
                "for sentiment categorization with respect to rating scales. ACL 2005."
            ),
            homepage="http://www.cs.cornell.edu/people/pabo/movie-review-data/",
        ),
        Dataset(
            name="tatoeba_cmn_eng",
            title="Tatoeba English-Mandarin sentence pairs",
            files=(
                DataFile(
                    "tatoeba_cmn_eng/cmn.txt",
                    f"{_GH}/vvvLong/BiLSTM_Seq2Seq_with_Attention"
                    "/25530967f38089e196df9cce92bf11c5ed187442/data/cmn.txt",
                    "ea9fff40aedc0f601d3267c2ca5dd6203972c6fd3fd777aa5b40d7dfb18a088d",
                    3_365_914,
                ),
                DataFile(
                    "tatoeba_cmn_eng/_about.txt",
                    f"{_GH}/vvvLong/BiLSTM_Seq2Seq_with_Attention"
                    "/25530967f38089e196df9cce92bf11c5ed187442/data/_about.txt",
                    "09677e792c45ecd077162f4dc21b9b1f0297623500b1b3af3230db3462a79796",
                    1_441,
                ),
            ),
            license=(
                "CC BY 2.0 FR (Tatoeba); attribution to tatoeba.org and "
                "manythings.org/anki"
            ),
            citation="Tatoeba Project, https://tatoeba.org, via https://www.manythings.org/anki/",
            homepage="https://tatoeba.org",
        ),
        Dataset(
            name="xquad",
            title="XQuAD (English and Chinese)",
            files=tuple(
                DataFile(
                    f"xquad/xquad.{lang}.json",
                    f"{_GH}/google-deepmind/xquad/7d30520c717524000f0d9d2f9c10a069acd9d285"
                    f"/xquad.{lang}.json",
                    sha,
                    size,
                )
                for lang, sha, size in [
                    (
                        "en",
                        "e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29",
                        609_383,
                    ),
                    (
                        "zh",
                        "691d0b3359bc6b8faa8de931dfdfe21d50a65861ae348e32a0d1a0190b0c8835",
                        808_652,
                    ),
                ]
            ),
            license="CC BY-SA 4.0",
            citation=(
                "Mikel Artetxe, Sebastian Ruder and Dani Yogatama. On the "
                "cross-lingual transferability of monolingual representations. "
                "ACL 2020."
            ),
            homepage="https://github.com/google-deepmind/xquad",
        ),
        Dataset(
            name="cmrc2018",
            title="CMRC 2018 (development set)",
            files=(
                DataFile(
                    "cmrc2018/cmrc2018_dev.json",
                    f"{_GH}/ymcui/cmrc2018/c0eb1b6ba219847457e6af3180da722bbeb656af"
                    "/squad-style-data/cmrc2018_dev.json",
                    "e9ff74231f05c230c6fa88b84441ee334d97234cbb610991cd94b82db00c7f1f",
                    3_299_139,
                ),
            ),
            license="CC BY-SA 4.0",
            citation=(
                "Yiming Cui et al. A span-extraction dataset for Chinese machine "
                "reading comprehension. EMNLP 2019."
            ),
            homepage="https://github.com/ymcui/cmrc2018",
        ),
        Dataset(
            name="chinese_classics",
            title="Chinese classics: Analects, Book of Songs, Tang poems",
            files=tuple(
                DataFile(
                    f"chinese_classics/{local}",
                    f"{_GH}/chinese-poetry/chinese-poetry"
                    f"/99ebbef7e1345c0985c44b9fd96a3f9e776f117b/{remote}",
                    sha,
                    size,
                )
                for local, remote, sha, size in [
                    (
                        "lunyu.json",
                        "%E8%AE%BA%E8%AF%AD/lunyu.json",
                        "bc336a3839706377892719db44c48a09794a493190535a42bf1c7d4c4233e96c",
                        74_799,
                    ),
                    (
                        "shijing.json",
                        "%E8%AF%97%E7%BB%8F/shijing.json",
                        "3c7ca54d59424542ada99adfcc85420287fbbd5c8a511e9baf705cb2b04051e7",
                        156_972,
                    ),
                    (
                        "tangshi300.json",
                        "%E5%85%A8%E5%94%90%E8%AF%97/%E5%94%90%E8%AF%97%E4%B8%89%E7%99%BE%E9%A6%96.json",
                        "d77a145f7470da2ed2f79515944563c062ffc43fceda07f195a36ead66b7e5c7",
                        190_787,
                    ),
                    (
                        "poet.tang.0.json",
                        "%E5%85%A8%E5%94%90%E8%AF%97/poet.tang.0.json",
                        "4f88f429938082523cdc72a1612bd7a7c3e3f7a33f8192c61ae51340efc3c92d",
                        408_405,
                    ),
                ]
            ),
            license="Texts: public domain. JSON compilation: MIT (chinese-poetry).",
            citation="chinese-poetry contributors, https://github.com/chinese-poetry/chinese-poetry",
            homepage="https://github.com/chinese-poetry/chinese-poetry",
        ),
        Dataset(
            name="csl_title",
            title="CSL abstract-to-title (Chinese scientific literature)",
            files=tuple(
                DataFile(
                    f"csl_title/{split}.tsv",
                    f"{_GH}/ydli-ai/CSL"
                    f"/0f1ac0626d584cd3c72f8be26d329eb4f967cfd0/benchmark/ts/{split}.tsv",
                    sha,
                    size,
                )
                for split, sha, size in [
                    (
                        "dev",
                        "63fc67552bdad69b392e89295c8055e2c1b8d5e8acf6fec614738056451ccb45",
                        623_069,
                    ),
                    (
                        "test",
                        "51900a71a26193525e98fa4e65c0e78ea4ca0b84cd1f0da0de0690ffdb85791d",
                        620_191,
                    ),
                ]
            ),
            license="Apache-2.0 (as stated by the data set)",
            citation=(
                "Yudong Li et al. CSL: A large-scale Chinese scientific literature "
                "dataset. COLING 2022."
            ),
            homepage="https://github.com/ydli-ai/CSL",
        ),
        Dataset(
            name="scitldr",
            title="SciTLDR-A (development set)",
            files=(
                DataFile(
                    "scitldr/SciTLDR-A_dev.jsonl",
                    f"{_GH}/allenai/scitldr/5ccad9c00a60ad75c9e04abf7f27d0f53f983b20"
                    "/SciTLDR-Data/SciTLDR-A/dev.jsonl",
                    "3191fa98ccc09521332b7a1cd63b1930be4e8df125a235ccd31e40329709525e",
                    1_124_865,
                ),
            ),
            license="Apache-2.0 (repository license)",
            citation=(
                "Isabel Cachola, Kyle Lo, Arman Cohan and Daniel S. Weld. TLDR: "
                "Extreme summarization of scientific documents. Findings of EMNLP 2020."
            ),
            homepage="https://github.com/allenai/scitldr",
        ),
    ]
}

FILES: dict[str, DataFile] = {f.path: f for d in DATASETS.values() for f in d.files}


def dataset(name: str) -> Dataset:
    """Look up a data set by name, with a clear error listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown data set {name!r}; known data sets: {', '.join(sorted(DATASETS))}"
        ) from None


def data_file(path: str) -> DataFile:
    """Look up one file by its path below the data folder: ``"xquad/xquad.zh.json"``."""
    try:
        return FILES[path]
    except KeyError:
        raise ValueError(
            f"unknown data file {path!r}; known files: {', '.join(sorted(FILES))}"
        ) from None
