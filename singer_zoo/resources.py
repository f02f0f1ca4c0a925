"""Where the package's data lives: the zoo's configs and shipped embedders (package data,
found through `importlib.resources`, so a wheel or `pip install .` has them), the user
cache, and `get_file`, which fetches a file from a URL into the cache and checks its sha256.

Package data (declared in setup.cfg's `[options.package_data]`):

    singer_zoo/zoo_configs/*.yaml              one config per table row
    singer_zoo/zoo_configs/search_spaces/      tuner search spaces
    singer_zoo/pretrained/<name>/              a shipped embedder: embedder.keras + metadata.json

The cache (`cache_dir()`) is `$SINGER_ZOO_CACHE`, else `$XDG_CACHE_HOME/singer_zoo`, else
`~/.cache/singer_zoo`. It holds what is rebuilt or fetched on first use: the SavedModel and
TFLite files of the shipped embedders (`singer_zoo.pretrained`) and `get_file` downloads.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from singer_zoo.errors import FileProblem, IntegrityError, SingerZooError


class MissingPackageData(SingerZooError):
    """The installed package lacks data it needs (configs, a shipped embedder)."""

    def __init__(self, what: str, path):
        self.what, self.path = what, os.fspath(path)
        super().__init__(f"the installed singer_zoo has no {what} (looked in {self.path}); "
                         f"reinstall the package, or see docs/export.md")

    def __reduce__(self):  # pickled by its fields (custom __init__: the default fails)
        return type(self), (self.what, self.path)


class DownloadError(FileProblem):
    """A file could not be fetched from its origin URL."""


def package_path(*parts: str, what: str) -> Path:
    """The folder or file `parts` inside the installed package; `MissingPackageData` naming
    `what` if it is not there (a wheel built without the package data, a deleted folder)."""
    root = importlib.resources.files("singer_zoo")
    if not isinstance(root, Path):  # a zipped install: our loaders need real files
        raise MissingPackageData(what, str(root))
    path = root.joinpath(*parts)
    if not path.exists():
        raise MissingPackageData(what, path)
    return path


def configs_dir() -> Path:
    """The zoo's configs: `$SINGER_ZOO_CONFIGS` (users' own rows) or the package's."""
    if "SINGER_ZOO_CONFIGS" in os.environ:
        return Path(os.environ["SINGER_ZOO_CONFIGS"])
    return package_path("zoo_configs", what="zoo configs (singer_zoo/zoo_configs/*.yaml)")


def cache_dir() -> Path:
    """The user cache folder (see the module doc); not created here."""
    if os.environ.get("SINGER_ZOO_CACHE"):
        return Path(os.environ["SINGER_ZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "singer_zoo"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_file(fname: str, origin: str, file_hash: str, cache_subdir: str = "downloads"
             ) -> Path:
    """The local path of `fname`, fetched from `origin` into `cache_dir()/cache_subdir`.

    Like `keras.utils.get_file` (which keras-hub presets resolve through): a cached file
    whose sha256 equals `file_hash` is returned as it is; otherwise the URL (https://,
    file://) is read into a temporary file beside the target, its sha256 checked, and only
    then renamed into place, so an interrupted or corrupted download never becomes the
    cached file.

    Args:
        fname: file name in the cache folder.
        origin: URL to fetch from.
        file_hash: the file's expected sha256 (hex).
        cache_subdir: folder under `cache_dir()`.

    Returns:
        The path of the verified file.

    Raises:
        DownloadError: the URL cannot be read. IntegrityError: its sha256 differs.

    Example:
        >>> path = get_file("embedder.keras", "file:///models/embedder.keras", "5762...")
    """
    folder = cache_dir() / cache_subdir
    target = folder / fname
    if target.is_file() and sha256_file(target) == file_hash:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(origin) as src:  # noqa: S310 (user-given URL)
                    shutil.copyfileobj(src, out, 1 << 20)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise DownloadError(origin, f"cannot fetch {fname} ({e})") from None
        if sha256_file(tmp) != file_hash:
            raise IntegrityError(origin, f"sha256 of the fetched {fname} differs from the "
                                         f"expected {file_hash[:12]}... (corrupted or changed)")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
