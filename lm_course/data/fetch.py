"""Fetch a data file: first a local copy, then the cache, then the pinned URL.

The order, and the environment variables that steer it:

1. ``LM_COURSE_DATA``: a folder holding offline copies (CI points it at
   ``shared/data``).
2. The cache, ``LM_COURSE_CACHE`` or the operating system's cache folder.
3. A download from the pinned URL (``LM_COURSE_MIRROR`` replaces the host, for readers
   behind a proxy that mirrors GitHub's raw files).

Every file is checked against its sha256 wherever it comes from; a mismatch is an error,
never a silent fallback to a different version of the data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from ..progress import progress_enabled
from .registry import DataFile, data_file

ENV_DATA = "LM_COURSE_DATA"
ENV_CACHE = "LM_COURSE_CACHE"
ENV_MIRROR = "LM_COURSE_MIRROR"


class DataError(RuntimeError):
    """Any error of the data layer; its message says what to do, in one line."""


class DataIntegrityError(DataError, ValueError):
    """A file exists but its sha256 is not the pinned one."""


class DataUnavailableError(DataError, OSError):
    """A file is neither available locally nor downloadable, or a setting is wrong."""


def sha256_of(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The folder downloads are cached in (``LM_COURSE_CACHE`` overrides it)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    import pooch  # only for the platform's default cache folder

    return Path(pooch.os_cache("lm-course"))


def download_url(file: DataFile) -> str:
    """The pinned URL, or the same path below ``LM_COURSE_MIRROR`` when that is set."""
    mirror = os.environ.get(ENV_MIRROR)
    if not mirror:
        return file.url
    base = urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise DataUnavailableError(
            f"{ENV_MIRROR}={mirror!r} is not an http(s) URL; set it to the address of "
            f"a mirror of {urlsplit(file.url).netloc}, e.g. "
            "https://mirror.example.org, "
            "or unset it to download from the pinned URLs"
        )
    return mirror.rstrip("/") + urlsplit(file.url).path


def _local_copy(entry: DataFile) -> Path | None:
    """The copy below ``LM_COURSE_DATA``, checked, or None when that folder lacks it."""
    local_root = os.environ.get(ENV_DATA)
    if not local_root:
        return None
    if not Path(local_root).is_dir():
        problem = "is a file" if Path(local_root).exists() else "does not exist"
        raise DataUnavailableError(
            f"{ENV_DATA}={local_root} {problem}, but it should be the folder of "
            f"offline copies (holding {entry.path}); fix the path, or unset {ENV_DATA} "
            "to download the data into the cache"
        )
    candidate = Path(local_root) / entry.path
    if not candidate.is_file():
        return None
    actual = sha256_of(candidate)
    if actual != entry.sha256:
        raise DataIntegrityError(
            f"{candidate} has sha256 {actual}, but the course expects {entry.sha256}. "
            f"The copy is damaged or a different version: replace it with the file "
            f"from {entry.url}, or unset {ENV_DATA} to download it."
        )
    return candidate


def _cache_folder(entry: DataFile) -> Path:
    """Where ``entry`` is cached; a regular file in the way is named."""
    folder = cache_dir() / Path(entry.path).parent
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise DataUnavailableError(
                    f"cannot cache {entry.path} in {folder}: {parent} is a file, not a "
                    f"folder; move it away or set {ENV_CACHE} to another folder"
                )
            break
    return folder


def fetch(file: str | DataFile) -> Path:
    """Return a local path to a verified copy of ``file`` (a registry path or entry).

    Example: ``fetch("tinyshakespeare/input.txt")``.

    Raises:
        DataIntegrityError: a local copy or a download has the wrong sha256
            (a ``ValueError``).
        DataUnavailableError: no local copy and the download failed (offline, HTTP
            error), or a setting points nowhere useful (an ``OSError``).
    """
    entry = data_file(file) if isinstance(file, str) else file
    local = _local_copy(entry)
    if local is not None:
        return local

    # Imported only when a download is needed: pooch imports ``tqdm.auto``, which warns
    # (with an absolute path) in a notebook kernel without ipywidgets.
    import pooch
    import requests

    url = download_url(entry)
    folder = _cache_folder(entry)
    downloader = pooch.HTTPDownloader(progressbar=progress_enabled(), timeout=60)
    try:
        # pooch re-downloads a cached file whose hash does not match, and deletes a
        # download whose hash does not match, so a bad file is never returned.
        cached = pooch.retrieve(
            url,
            known_hash=f"sha256:{entry.sha256}",
            fname=Path(entry.path).name,
            path=folder,
            downloader=downloader,
        )
    except requests.exceptions.RequestException as err:
        raise DataUnavailableError(
            f"could not download {entry.path} from {url} ({type(err).__name__}). "
            f"Connect to the internet, or put a copy of the file at "
            f"<folder>/{entry.path} and set {ENV_DATA}=<folder>."
        ) from None
    except ValueError as err:
        if "does not match the known hash" not in str(err):
            raise
        raise DataIntegrityError(
            f"the download of {entry.path} from {url} does not have the expected "
            f"sha256 {entry.sha256}. The server sent a different file: check "
            f"{ENV_MIRROR} if you set it, or try again later."
        ) from None
    except OSError as err:
        raise DataUnavailableError(
            f"cannot write {entry.path} into the cache folder {folder} ({err}); set "
            f"{ENV_CACHE} to a folder you can write to"
        ) from None
    return Path(cached)
