"""The data registry, the verified fetcher (a server on 127.0.0.1) and the loaders."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from lm_course import data
from lm_course.data import DataIntegrityError, DataUnavailableError, data_file, fetch

SHAKESPEARE = "tinyshakespeare/input.txt"


def _publish(
    entry: data.DataFile, source: Path, www: Path, content: bytes | None = None
) -> None:
    """Put a file where the mirror URL of ``entry`` will look for it."""
    target = www / unquote(urlsplit(entry.url).path).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        shutil.copyfile(source, target)
    else:
        target.write_bytes(content)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No offline folder, an empty cache of our own."""
    monkeypatch.delenv("LM_COURSE_DATA", raising=False)
    monkeypatch.delenv("LM_COURSE_MIRROR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LM_COURSE_CACHE", str(cache))
    return cache


def test_registry_matches_the_shared_checksums(shared_data: Path) -> None:
    sums = dict(
        reversed(line.split(None, 1))
        for line in (shared_data / "SHA256SUMS").read_text().splitlines()
    )
    sums = {path.strip().lstrip("./").lstrip("*"): sha for path, sha in sums.items()}
    assert {p: f.sha256 for p, f in data.FILES.items()} == sums
    for entry in data.FILES.values():
        assert entry.url.startswith("https://raw.githubusercontent.com/")
        assert (shared_data / entry.path).stat().st_size == entry.size


def test_every_dataset_has_license_and_citation() -> None:
    for ds in data.DATASETS.values():
        assert ds.license and ds.citation and ds.homepage.startswith("http")


def test_download_good_file_is_cached(
    isolated, http_root, shared_data, monkeypatch
) -> None:
    base, www = http_root
    entry = data_file(SHAKESPEARE)
    _publish(entry, shared_data / SHAKESPEARE, www)
    monkeypatch.setenv("LM_COURSE_MIRROR", base)
    path = fetch(SHAKESPEARE)
    assert path.is_relative_to(isolated)
    assert data.sha256_of(path) == entry.sha256
    # The server goes away; the cache still serves the file.
    shutil.rmtree(www)
    assert fetch(SHAKESPEARE) == path
    assert data.tiny_shakespeare().startswith("First Citizen:")


def test_corrupted_download_is_rejected(isolated, http_root, monkeypatch) -> None:
    base, www = http_root
    entry = data_file(SHAKESPEARE)
    _publish(entry, Path(), www, content=b"First Citizen: not the real file\n")
    monkeypatch.setenv("LM_COURSE_MIRROR", base)
    with pytest.raises(DataIntegrityError, match=r"tinyshakespeare/input.txt.*sha256"):
        fetch(SHAKESPEARE)
    # Nothing half-checked is left behind for the next call to use.
    assert not list(isolated.rglob("input.txt"))


def test_corrupted_cache_is_downloaded_again(
    isolated, http_root, shared_data, monkeypatch
) -> None:
    base, www = http_root
    entry = data_file(SHAKESPEARE)
    _publish(entry, shared_data / SHAKESPEARE, www)
    monkeypatch.setenv("LM_COURSE_MIRROR", base)
    path = fetch(SHAKESPEARE)
    path.write_text("tampered")
    assert data.sha256_of(fetch(SHAKESPEARE)) == entry.sha256


def test_missing_file_on_server(isolated, http_root, monkeypatch) -> None:
    base, _ = http_root
    monkeypatch.setenv("LM_COURSE_MIRROR", base)
    with pytest.raises(
        DataUnavailableError, match=r"could not download .*LM_COURSE_DATA"
    ):
        fetch(SHAKESPEARE)


def test_offline_names_url_and_variable(isolated, monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LM_COURSE_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(DataUnavailableError) as err:
        fetch("xquad/xquad.zh.json")
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/google-deepmind/xquad/" in message
    assert "LM_COURSE_DATA" in message


def test_local_folder_is_used_first(isolated, shared_data, monkeypatch) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    assert fetch(SHAKESPEARE) == shared_data / SHAKESPEARE
    assert not isolated.exists()


def test_corrupted_local_copy_is_an_error(isolated, tmp_path, monkeypatch) -> None:
    bad = tmp_path / "offline"
    (bad / "tinyshakespeare").mkdir(parents=True)
    (bad / SHAKESPEARE).write_text("not shakespeare")
    monkeypatch.setenv("LM_COURSE_DATA", str(bad))
    with pytest.raises(
        DataIntegrityError, match=r"expects 86c4e6aa.*unset LM_COURSE_DATA"
    ):
        fetch(SHAKESPEARE)


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known files: .*tinyshakespeare/input.txt"):
        fetch("shakespeare.txt")
    with pytest.raises(ValueError, match="known data sets: .*xquad"):
        data.dataset("squad")
    with pytest.raises(ValueError, match="lang must be 'en' or 'zh'"):
        data.xquad("fr")
    with pytest.raises(ValueError, match="name must be one of lunyu"):
        data.chinese_classics("tao")


def test_loaders_return_ready_objects(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("LM_COURSE_DATA", str(shared_data))
    text = data.tiny_shakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65

    polarity = data.sentence_polarity()
    assert (len(polarity.train), len(polarity.val), len(polarity.test)) == (
        8530,
        1066,
        1066,
    )
    assert {s.label for s in polarity.val} == {0, 1}
    assert data.sentence_polarity().val == polarity.val  # the split is fixed
    everything = polarity.train + polarity.val + polarity.test
    assert sum(s.label for s in everything) == 5331  # every positive line, once

    pairs = data.tatoeba_cmn_eng()
    assert len(pairs.train) + len(pairs.val) + len(pairs.test) == 23_610
    assert all(p.en and p.zh for p in pairs.val)

    en, zh = data.xquad("en"), data.xquad("zh")
    assert len(en) == len(zh) == 1190
    first = en[0]
    assert first.context[first.answer_starts[0] :].startswith(first.answers[0])
    assert len(data.cmrc2018()) == 3219

    assert len(data.chinese_classics("lunyu")) == 20
    assert data.chinese_classics("shijing")[0].startswith("关关雎鸠")
    assert len(data.chinese_classics("tang")) == 1000
    assert len(data.csl_titles("dev")) == 1000
    assert len(data.scitldr()) == 619


def test_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="val_fraction must be in"):
        data.split_examples([1, 2, 3], val_fraction=1.5)
    with pytest.raises(ValueError, match="below 1 to leave training data"):
        data.split_examples([1, 2, 3], val_fraction=0.5, test_fraction=0.5)


def test_data_errors_are_value_and_os_errors() -> None:
    # The command line prints these as one `error:` line, like any ValueError/OSError.
    assert issubclass(DataIntegrityError, ValueError)
    assert issubclass(DataUnavailableError, OSError)
    assert issubclass(DataIntegrityError, data.DataError)
    assert issubclass(DataUnavailableError, data.DataError)


def test_a_missing_local_folder_says_so(isolated, tmp_path, monkeypatch) -> None:
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv("LM_COURSE_DATA", str(missing))
    with pytest.raises(
        DataUnavailableError,
        match=rf"LM_COURSE_DATA={missing} does not exist, but it should be the folder "
        r"of offline copies .*unset LM_COURSE_DATA",
    ):
        fetch(SHAKESPEARE)
    missing.write_text("a file")
    with pytest.raises(DataUnavailableError, match=r"LM_COURSE_DATA=.* is a file"):
        fetch(SHAKESPEARE)


@pytest.mark.parametrize(
    "mirror", ["mirror.example.org", "/srv/mirror", "ftp://mirror.example.org"]
)
def test_a_mirror_that_is_not_a_url_is_not_a_hash_mismatch(
    isolated, monkeypatch, mirror
) -> None:
    monkeypatch.setenv("LM_COURSE_MIRROR", mirror)
    with pytest.raises(
        DataUnavailableError,
        match=rf"LM_COURSE_MIRROR='{mirror}' is not an http\(s\) URL; .*or unset it",
    ):
        fetch(SHAKESPEARE)


def test_a_cache_below_a_regular_file_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("LM_COURSE_DATA", raising=False)
    monkeypatch.delenv("LM_COURSE_MIRROR", raising=False)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("LM_COURSE_CACHE", str(blocker / "cache"))
    with pytest.raises(
        DataUnavailableError,
        match=rf"cannot cache {SHAKESPEARE} in .*: {blocker} is a file, not a folder; "
        r"move it away or set LM_COURSE_CACHE",
    ):
        fetch(SHAKESPEARE)
