"""The paper's data protocols: which recordings train, validate and test (sections 3.4, 3.5).

- `cv_folds`: singer classification (section 3.4). Every singer has exactly `n_folds`
  recordings; fold k tests on one recording per singer and trains on the others, one of
  which (random, seeded) is the validation set for early stopping. Across the folds every
  recording is tested exactly once (and is the validation recording exactly once).
- `embedding_split`: singing-performance embedding (section 3.5). Train / validation / test
  by SONGS, so the test performances are of songs the model never heard (docs/evaluation.md
  lists the rules).

Both return `Manifest`s, keeping the input's root folder; in the folds each recording's
`split` field says its side in that fold.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from singer_zoo.data.damp import DAMP_BALANCED_SONGS, _norm, damp_balanced_split
from singer_zoo.data.manifest import SPLITS, Manifest, _listed
from singer_zoo.errors import ConfigError, ManifestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: `index` (0-based) and its three recording sets."""

    index: int
    train: Manifest
    validation: Manifest
    test: Manifest


def _manifest(recordings) -> Manifest:
    return recordings if isinstance(recordings, Manifest) else Manifest(list(recordings))


def cv_folds(recordings, n_folds: int = 10, seed: int = 0) -> list[Fold]:
    """The `n_folds` folds of the singer-classification protocol.

    Each singer's recordings (sorted by recording id, then shuffled with `seed`) form a
    permutation p; fold k tests on p[k], validates on p[(k + 1) % n_folds] (a uniformly
    random one of the other recordings, since p is random) and trains on the rest.
    Raises `ManifestError` listing the singers whose number of recordings is not `n_folds`
    (select them first, e.g. `read_damp(..., recordings_per_singer=10)`).
    """
    if not isinstance(n_folds, int) or n_folds < 3:
        raise ConfigError(f"n_folds must be an integer >= 3 (test, validation and training "
                          f"recordings per singer), got {n_folds!r}")
    m = _manifest(recordings)
    by_singer = defaultdict(list)
    for r in m:
        by_singer[r.singer].append(r)
    if not by_singer:
        raise ManifestError(m.root, "no recordings to split into folds")
    wrong = [f"{s} ({len(rs)})" for s, rs in sorted(by_singer.items()) if len(rs) != n_folds]
    if wrong:
        raise ManifestError(m.root, f"{n_folds}-fold cross validation needs exactly {n_folds} "
                                    f"recordings per singer; these singers differ "
                                    f"(count in parentheses): {_listed(wrong)}. To fix: "
                                    f"give the manifest a split column (train, validation, "
                                    f"test), select {n_folds} recordings per singer, or "
                                    f"generate a corpus with `singer-zoo data synth DIR "
                                    f"--songs {n_folds}`")
    rng = np.random.default_rng(seed)
    perms = []
    for singer in sorted(by_singer):
        recs = sorted(by_singer[singer], key=lambda r: (r.recording, r.path))
        perms.append([recs[i] for i in rng.permutation(n_folds)])
    folds = []
    for k in range(n_folds):
        parts = {side: [] for side in SPLITS}
        for p in perms:
            for j, r in enumerate(p):
                side = "test" if j == k else "validation" if j == (k + 1) % n_folds \
                    else "train"
                parts[side].append(dataclasses.replace(r, split=side))
        folds.append(Fold(k, *(Manifest(parts[side], m.root) for side in SPLITS)))
    return folds


def cv_fold(recordings, fold: int, n_folds: int = 10, seed: int = 0) -> Fold:
    """Fold number `fold` (0-based) of `cv_folds(recordings, n_folds, seed)` (`--fold K`)."""
    if not isinstance(fold, int) or not 0 <= fold < n_folds:
        raise ConfigError(f"fold must be an integer in [0, {n_folds}), got {fold!r}")
    return cv_folds(recordings, n_folds, seed)[fold]


def _counts(n: int, fractions) -> tuple[int, int, int]:
    """(train, validation, test) counts of n items: validation and test get
    max(1, round(n * fraction)), train the rest (at least 1)."""
    n_val = max(1, int(round(n * fractions[1])))
    n_test = max(1, int(round(n * fractions[2])))
    return n - n_val - n_test, n_val, n_test


def _split_column(m: Manifest) -> dict[str, Manifest]:
    missing = [r.recording or r.path for r in m if r.split not in SPLITS]
    if missing:
        raise ManifestError(m.root, f"the split column is filled for some recordings but "
                                    f"not valid for {_listed(missing)}; valid: "
                                    f"{', '.join(SPLITS)}")
    return {s: m.filter(split=s) for s in SPLITS}


def _by_songs(m: Manifest, fractions, require_all_songs: bool) -> dict[str, Manifest]:
    songs = m.songs  # sorted
    n_train, n_val, _ = _counts(len(songs), fractions)
    if n_train < 1:
        raise ManifestError(m.root, f"a split by songs needs at least 3 songs, got {songs}")
    sides = {"train": songs[:n_train], "validation": songs[n_train:n_train + n_val],
             "test": songs[n_train + n_val:]}
    sung = defaultdict(set)
    for r in m:
        sung[r.singer].add(r.song)
    out = {}
    for side, names in sides.items():
        keep = set(names)
        part = m.filter(lambda r: r.song in keep and (not require_all_songs
                                                      or keep <= sung[r.singer]))
        if not len(part):
            raise ManifestError(m.root, f"{side} songs {names}: no singer sang all of them; "
                                        f"add a split column or pass require_all_songs=False")
        out[side] = part
    return out


def _by_singers(m: Manifest, fractions) -> dict[str, Manifest]:
    singers = m.singers  # sorted
    n_train, n_val, _ = _counts(len(singers), fractions)
    if n_train < 1:
        raise ManifestError(m.root, f"a split by speakers needs at least 3 of them, got "
                                    f"{singers}")
    groups = {"train": singers[:n_train], "validation": singers[n_train:n_train + n_val],
              "test": singers[n_train + n_val:]}
    return {side: m.filter(singer=tuple(g)) for side, g in groups.items()}


def check_verification_split(test) -> None:
    """Raise `ManifestError` before any training when the test side of an embedding split
    cannot give the verification EER: it needs same-singer pairs (a singer with two test
    performances) and different-singer pairs (two singers)."""
    m = _manifest(test)
    counts = defaultdict(int)
    for r in m:
        counts[r.singer] += 1
    if len(counts) < 2 or max(counts.values(), default=0) < 2:
        songs = len({r.song for r in m if r.song})
        raise ManifestError(m.root, f"the test side of the embedding split ({len(m)} "
                                    f"performances, {len(counts)} singers, {songs} song(s)) "
                                    f"has no same-singer or no different-singer pair, so no "
                                    f"verification EER: Table 2 needs at least two test "
                                    f"songs sung by the same singers (with the 60/20/20 song "
                                    f"split, 8 songs or more: `singer-zoo data synth DIR "
                                    f"--songs 8`), or a split column")


def embedding_split(manifest, fractions=(0.6, 0.2, 0.2), require_all_songs: bool = True
                    ) -> dict[str, Manifest]:
    """{"train", "validation", "test"} -> Manifest for the embedding task, by the first
    rule that applies:

    1. a `split` column is filled: it is used as is (every row must be train, validation
       or test);
    2. the songs are exactly DAMP-balanced's 14: `damp_balanced_split` (first 6 / next 4 /
       last 4 songs, the paper's split);
    3. there are songs: the sorted songs are cut into `fractions` (validation and test at
       least one song each, train the rest); a side keeps the singers who sang all its songs
       (as DAMP-balanced does) unless `require_all_songs` is False;
    4. no songs (speech): the sorted speakers are cut into `fractions`, so validation and
       test speakers are never seen in training.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"fractions must be three positive numbers summing to 1, "
                          f"got {fractions}")
    m = _manifest(manifest)
    if not len(m):
        raise ManifestError(m.root, "no recordings to split")
    if any(r.split for r in m):
        return _split_column(m)
    with_song = sum(bool(r.song) for r in m)
    if 0 < with_song < len(m):
        raise ManifestError(m.root, f"{len(m) - with_song} of {len(m)} recordings have no "
                                    f"song; fill the song column for all or none")
    if not with_song:
        return _by_singers(m, fractions)
    if {_norm(s) for s in m.songs} == {_norm(s) for s in DAMP_BALANCED_SONGS}:
        log.info("embedding_split: DAMP-balanced songs, using the paper's 6/4/4 split")
        return damp_balanced_split(m)
    return _by_songs(m, fractions, require_all_songs)


def select_recordings(manifest, task: str, fold: int):
    """(train, validation) recordings of `manifest` for training a `task` model: a
    classifier uses the manifest's `split` column when every row has one, else fold `fold`
    of `cv_folds`; an embedder (siamese) uses `embedding_split`'s train and validation.
    `singer-zoo train` and `singer-zoo tune` select their data with it."""
    if task == "siamese":
        split = embedding_split(manifest)
        return split["train"], split["validation"]
    if all(r.split for r in manifest):
        return manifest.filter(split="train"), manifest.filter(split="validation")
    chosen = cv_fold(manifest, fold)
    return chosen.train, chosen.validation
