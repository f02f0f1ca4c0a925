"""A generic CSV manifest of singing recordings (docs/datasets.md).

Any data set can be described by a CSV file with the columns `path` and `singer` (required)
and optionally `song`, `recording` (an id; defaults to the path as written) and `split`
(train / validation / test). Other columns are kept in `Recording.extra`. Relative paths are
relative to the manifest's folder, so a corpus folder can be moved as a whole.

`read_manifest` validates everything a later stage would trip over and raises one
`ManifestError` naming the manifest and listing every problem of the same kind (row numbers
are CSV line numbers, the header being line 1).
"""
from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable

from singer_zoo.errors import ConfigError, ManifestError

REQUIRED = ("path", "singer")
OPTIONAL = ("song", "recording", "split")
COLUMNS = REQUIRED + OPTIONAL
SPLITS = ("train", "validation", "test")
MAX_LISTED = 10  # how many offending rows/files an error lists before giving a count


@dataclass(frozen=True)
class Recording:
    """One performance. `path` is absolute; `recording` is a unique id."""

    path: str
    singer: str
    song: str = ""
    recording: str = ""
    split: str = ""
    extra: dict = field(default_factory=dict, hash=False)


def _listed(items: list) -> str:
    """'a, b, c' for at most MAX_LISTED items, then '... (N in all)'."""
    shown = ", ".join(str(i) for i in items[:MAX_LISTED])
    return shown if len(items) <= MAX_LISTED else f"{shown}, ... ({len(items)} in all)"


class Manifest(Sequence):
    """An ordered, immutable sequence of `Recording`s plus the folder they are relative to."""

    def __init__(self, records: Iterable[Recording], root=None):
        self._records = tuple(records)
        self.root = Path(root if root is not None else os.getcwd()).resolve()

    @classmethod
    def from_records(cls, records: Iterable[Recording], root=None) -> Manifest:
        """Build a manifest from recordings, e.g. after selecting or relabelling some."""
        return cls(records, root)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Manifest(self._records[i], self.root)
        return self._records[i]

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return (f"Manifest({len(self)} recordings, {len(self.singers)} singers, "
                f"{len(self.songs)} songs, root={str(self.root)!r})")

    @property
    def singers(self) -> list[str]:
        """Sorted distinct singer names."""
        return sorted({r.singer for r in self._records})

    @property
    def songs(self) -> list[str]:
        """Sorted distinct non-empty song names."""
        return sorted({r.song for r in self._records if r.song})

    def filter(self, predicate: Callable[[Recording], bool] | None = None,
               **equals) -> Manifest:
        """Recordings for which `predicate(r)` is true and every `field=value` holds; a value
        may also be a list/tuple/set of accepted values: `m.filter(singer=("a", "b"))`."""
        unknown = [k for k in equals if k not in {f.name for f in dataclasses.fields(Recording)}]
        if unknown:
            raise ConfigError(f"Manifest.filter: unknown field(s) {unknown}")

        def keep(r: Recording) -> bool:
            for k, v in equals.items():
                ok = getattr(r, k) in v if isinstance(v, (list, tuple, set, frozenset)) \
                    else getattr(r, k) == v
                if not ok:
                    return False
            return predicate is None or bool(predicate(r))

        return Manifest([r for r in self._records if keep(r)], self.root)

    def subset(self, indices: Iterable[int]) -> Manifest:
        """The recordings at `indices`, in that order."""
        return Manifest([self._records[int(i)] for i in indices], self.root)

    def write(self, path) -> Path:
        """Write a manifest CSV (atomically: a temporary file then a rename). Paths are
        written relative to the new file's folder when they lie under it, else absolute."""
        path = Path(path).resolve()
        extra_cols = []
        for r in self._records:
            extra_cols += [k for k in r.extra if k not in extra_cols and k not in COLUMNS]
        cols = list(COLUMNS) + extra_cols
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for r in self._records:
                p = Path(r.path)
                rel = p.relative_to(path.parent).as_posix() if p.is_relative_to(path.parent) \
                    else str(p)
                w.writerow({"path": rel, "singer": r.singer, "song": r.song,
                            "recording": r.recording, "split": r.split, **r.extra})
        os.replace(tmp, path)
        return path


def audio_path(folder, name) -> str:
    """`name` (relative to `folder`, or absolute) as an absolute, normalised path whose
    symlinks are not followed: it names what the user listed, and never raises on a
    symlink loop."""
    return os.path.normpath(os.path.join(os.path.abspath(folder), os.fsdecode(name)))


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = []
            for row in reader:
                values = {h.strip(): (v or "").strip() for h, v in row.items() if h is not None}
                if any(values.values()):
                    rows.append((reader.line_num, values))
    except FileNotFoundError:
        raise ManifestError(path, "manifest file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ManifestError(path, f"cannot read the manifest as UTF-8 CSV ({e})") from None
    return header, rows


def read_manifest(path, check_files: bool = True, splits: Sequence[str] | None = SPLITS
                  ) -> Manifest:
    """Read and validate a manifest CSV (see the module docstring).

    Raises `ManifestError` for: a missing or unreadable file, no rows, missing required
    columns, empty `path`/`singer` values, `split` values not in `splits` (pass None to
    allow any), duplicate paths or recording ids and, if `check_files`, missing audio files.
    """
    path = Path(path).resolve()
    header, rows = _read_rows(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ManifestError(path, f"missing required column(s) {missing}; found {header}")
    if not rows:
        raise ManifestError(path, "the manifest has no rows")
    for col in REQUIRED:
        empty = [n for n, row in rows if not row[col]]
        if empty:
            raise ManifestError(path, f"empty {col!r} in row(s) {_listed(empty)}")
    if splits is not None and "split" in header:
        bad = [f"{n} ({row['split']!r})" for n, row in rows
               if row["split"] and row["split"] not in splits]
        if bad:
            raise ManifestError(path, f"unknown split value in row(s) {_listed(bad)}; "
                                      f"valid: {', '.join(splits)}")
    records, seen_path, seen_id, dups = [], {}, {}, []
    for n, row in rows:
        # the entry as listed (absolute, normalised), symlinks kept: a broken link or a
        # loop is then reported by this name when the file is read (Path.resolve raised
        # RuntimeError on a loop and named a dangling link by its target)
        audio = audio_path(path.parent, row["path"])
        rec_id = row.get("recording") or Path(row["path"]).as_posix()
        for seen, key, what in ((seen_path, os.path.realpath(audio), "path"),
                                (seen_id, rec_id, "recording")):
            if key in seen:
                dups.append(f"row {n} repeats the {what} of row {seen[key]} ({key})")
            seen.setdefault(key, n)
        extra = {k: v for k, v in row.items() if k not in COLUMNS}
        records.append(Recording(audio, row["singer"], row.get("song", ""), rec_id,
                                 row.get("split", ""), extra))
    if dups:
        raise ManifestError(path, f"duplicate rows: {_listed(dups)}")
    if check_files:
        absent = [r.path for r in records if not os.path.isfile(r.path)]
        if absent:
            raise ManifestError(path, f"{len(absent)} audio file(s) not found: "
                                      f"{_listed(absent)}")
    return Manifest(records, path.parent)
