"""Readers for the DAMP Sing! Karaoke data sets used by the paper (section 3.1, Appendix A).

- Original DAMP: `perfs.csv` (one row per performance, at least `perf_key` and `plyrid`,
  the singer) and audio at `audio/<perf_key>.m4a`. The paper's singer classification uses
  singers with exactly 10 recordings (46 singers, 460 recordings). The name of a song column
  in perfs.csv is not publicly documented, so `song_column` names it (default: the first
  of `SONG_COLUMN_GUESSES` that is present, else no song).
- DAMP-balanced: 14 songs (`DAMP_BALANCED_SONGS`, Appendix A order). Its file layout is not
  public; describe it with a manifest (singer and song columns) and split it with
  `damp_balanced_split`: the last 4 songs are the test set, the first 10 any 6/4
  train/validation partition; each side keeps only the singers who sang all its songs
  (paper: first 6 / next 4 / last 4 -> 276/88/224 performances by 46/22/56 singers).
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path
from collections.abc import Sequence

from singer_zoo.data.manifest import Manifest, Recording, _listed
from singer_zoo.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)

DAMP_BALANCED_SONGS = (
    "one call away", "say you won't let go", "all of me", "closer", "seven years",
    "despacito", "more than words", "lost boy", "love yourself", "rockabye",
    "part of your world", "when I was your man", "chandelier", "cups",
)
# Column names tried, in order, for the song of a performance in DAMP's perfs.csv.
SONG_COLUMN_GUESSES = ("arrangement", "arr_key", "arrid", "song", "song_id", "songid",
                       "song_name", "title")


def read_damp(root, recordings_per_singer: int = 10, song_column: str | None = None,
              metadata: str = "perfs.csv", audio_dir: str = "audio", ext: str = ".m4a",
              check_files: bool = True) -> Manifest:
    """Manifest of the original DAMP layout, keeping singers with exactly
    `recordings_per_singer` performances (0 keeps everyone).

    Raises `ManifestError` naming perfs.csv if it is missing, lacks `perf_key`/`plyrid` (or
    the requested `song_column`), repeats a perf_key, or (with `check_files`) if kept audio
    files are missing.
    """
    root = Path(root).resolve()
    meta = root / metadata
    try:
        with open(meta, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k}
                    for row in reader]
    except FileNotFoundError:
        raise ManifestError(meta, "DAMP metadata file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ManifestError(meta, f"cannot read DAMP metadata ({e})") from None
    missing = [c for c in ("perf_key", "plyrid") if c not in header]
    if missing:
        raise ManifestError(meta, f"missing required column(s) {missing}; found {header}")
    if song_column is not None and song_column not in header:
        raise ManifestError(meta, f"song column {song_column!r} not found; found {header}")
    if song_column is None:
        song_column = next((c for c in SONG_COLUMN_GUESSES if c in header), None)
    repeated = [k for k, n in Counter(r["perf_key"] for r in rows).items() if n > 1]
    if repeated:
        raise ManifestError(meta, f"duplicate perf_key value(s): {_listed(repeated)}")
    counts = Counter(r["plyrid"] for r in rows)
    records = []
    for r in rows:
        if recordings_per_singer and counts[r["plyrid"]] != recordings_per_singer:
            continue
        extra = {k: v for k, v in r.items() if k not in ("perf_key", "plyrid")}
        records.append(Recording(str(root / audio_dir / f"{r['perf_key']}{ext}"), r["plyrid"],
                                 r.get(song_column, "") if song_column else "",
                                 r["perf_key"], "", extra))
    if check_files:
        absent = [rec.path for rec in records if not os.path.isfile(rec.path)]
        if absent:
            raise ManifestError(meta, f"{len(absent)} of {len(records)} audio file(s) "
                                      f"listed are missing: {_listed(absent)}")
    return Manifest(records, root)


def _norm(song: str) -> str:
    return song.replace("\u2018", "'").replace("\u2019", "'").strip().casefold()


def _check_sides(sides: dict, songs: Sequence[str]) -> None:
    """Validate a split: non-empty, disjoint, from `songs`; train/validation from all but
    the last 4 songs, test from the last 4. Raises ConfigError."""
    known = {_norm(s) for s in songs}
    first, last = {_norm(s) for s in songs[:-4]}, {_norm(s) for s in songs[-4:]}
    seen = {}
    for side, names in sides.items():
        if not names:
            raise ConfigError(f"damp_balanced_split: {side} songs are empty")
        for s in names:
            n = _norm(s)
            problem = None
            if n not in known:
                problem = f"is not in the song list ({', '.join(songs)})"
            elif n not in (last if side == "test" else first):
                problem = "must be one of " + ("the last 4" if side == "test"
                                               else "the first songs (not the last 4)")
            elif n in seen:
                problem = f"is also a {seen[n]} song"
            if problem:
                raise ConfigError(f"damp_balanced_split: {side} song {s!r} {problem}")
            seen[n] = side


def damp_balanced_split(manifest: Manifest, train_songs: Sequence[str] | None = None,
                        validation_songs: Sequence[str] | None = None,
                        test_songs: Sequence[str] | None = None,
                        songs: Sequence[str] = DAMP_BALANCED_SONGS) -> dict[str, Manifest]:
    """{"train", "validation", "test"} -> Manifest, each with one performance per song of its
    side by every singer who sang all of that side's songs (other singers are dropped).

    Defaults are the paper's split of `songs`: first 6 / next 4 / last 4. Song names match
    case-insensitively. Where a singer has several performances of one song, the one with the
    smallest recording id is kept and a warning says how many were dropped. An invalid
    split (empty, overlapping, unknown songs, test songs not among the last 4) raises
    ConfigError.
    """
    songs = list(songs)
    if len(songs) < 6:
        raise ConfigError(f"damp_balanced_split: the song list needs at least 6 songs, "
                          f"got {songs}")
    rest = songs[:-4]
    sides = {"train": list(train_songs if train_songs is not None else rest[:-4]),
             "validation": list(validation_songs if validation_songs is not None
                                else rest[-4:]),
             "test": list(test_songs if test_songs is not None else songs[-4:])}
    _check_sides(sides, songs)
    by_key = defaultdict(list)  # (singer, normalised song) -> recordings
    for r in manifest:
        by_key[(r.singer, _norm(r.song))].append(r)
    out = {}
    for side, names in sides.items():
        wanted = [_norm(s) for s in names]
        kept, dropped = [], 0
        for singer in manifest.singers:
            if all((singer, s) in by_key for s in wanted):
                for s in wanted:
                    recs = sorted(by_key[(singer, s)], key=lambda r: r.recording)
                    dropped += len(recs) - 1
                    kept.append(dataclasses.replace(recs[0], split=side))
        if dropped:
            log.warning("damp_balanced_split: %s: %d repeated performance(s) of a song by the "
                        "same singer dropped (kept the smallest recording id)", side, dropped)
        out[side] = Manifest(kept, manifest.root)
    return out
