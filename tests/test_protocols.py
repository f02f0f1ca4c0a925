"""The evaluation protocols: 10-fold singer classification folds and the embedding split."""
import logging
from collections import Counter

import pytest

from singer_zoo.data.damp import DAMP_BALANCED_SONGS
from singer_zoo.data.manifest import Manifest, Recording, read_manifest
from singer_zoo.errors import ConfigError, ManifestError
from singer_zoo.evaluation.protocols import cv_fold, cv_folds, embedding_split


def _rec(singer, song="", n=0, split=""):
    rid = f"{singer}_{song}_{n}"
    return Recording(f"/data/{rid}.wav", singer, song, rid, split)


def _classification(n_singers=4, per_singer=10):
    return Manifest([_rec(f"s{i}", n=j) for i in range(n_singers) for j in range(per_singer)],
                    "/data")


def _ids(m):
    return [r.recording for r in m]


def test_each_recording_tested_once_and_validated_once():
    m = _classification()
    folds = cv_folds(m, n_folds=10, seed=3)
    assert [f.index for f in folds] == list(range(10))
    tested = Counter(i for f in folds for i in _ids(f.test))
    validated = Counter(i for f in folds for i in _ids(f.validation))
    assert tested == Counter(_ids(m)) and validated == Counter(_ids(m))
    for f in folds:
        assert len(f.test) == len(f.validation) == 4 and len(f.train) == 32
        parts = [set(_ids(f.train)), set(_ids(f.validation)), set(_ids(f.test))]
        assert set.union(*parts) == set(_ids(m)) and sum(map(len, parts)) == 40
        for part in (f.test, f.validation):  # one recording per singer
            assert sorted(r.singer for r in part) == m.singers
        assert all(len(f.train.filter(singer=s)) == 8 for s in m.singers)
        assert {r.split for r in f.test} == {"test"} and {r.split for r in f.train} == {"train"}


def test_folds_are_seeded_and_independent_of_input_order():
    m = _classification()
    a = cv_folds(m, seed=1)
    b = cv_folds(Manifest(list(reversed(m))), seed=1)
    c = cv_folds(m, seed=2)
    assert [_ids(f.test) for f in a] == [_ids(f.test) for f in b]
    assert [_ids(f.validation) for f in a] == [_ids(f.validation) for f in b]
    assert [_ids(f.test) for f in a] != [_ids(f.test) for f in c]


def test_validation_recording_is_random_not_fixed_position():
    # Recording n=0 must not always be the test, nor n=1 always the validation.
    folds = cv_folds(_classification(n_singers=6), seed=0)
    assert len({r.recording.rsplit("_", 1)[1] for r in folds[0].test}) > 1
    assert len({r.recording.rsplit("_", 1)[1] for r in folds[0].validation}) > 1


def test_singers_with_wrong_counts_are_rejected_by_name():
    m = Manifest(list(_classification(3)) + [_rec("odd", n=0), _rec("odd", n=1)], "/data")
    with pytest.raises(ManifestError, match=r"odd \(2\)") as err:
        cv_folds(m)
    assert "s0" not in str(err.value) and "exactly 10 recordings" in str(err.value)


def test_cv_fold_picks_one_fold_and_checks_the_index():
    m = _classification()
    assert _ids(cv_fold(m, 4, seed=5).test) == _ids(cv_folds(m, seed=5)[4].test)
    for bad in (10, -1):
        with pytest.raises(ConfigError, match="fold must be"):
            cv_fold(m, bad)
    with pytest.raises(ConfigError, match="n_folds"):
        cv_folds(m, n_folds=2)


def test_split_column_is_used_and_must_be_complete():
    recs = [_rec("a", "x", split="train"), _rec("b", "y", split="validation"),
            _rec("c", "z", split="test"), _rec("d", "z", split="test")]
    out = embedding_split(Manifest(recs))
    assert {k: [r.singer for r in v] for k, v in out.items()} == \
        {"train": ["a"], "validation": ["b"], "test": ["c", "d"]}
    with pytest.raises(ManifestError, match="split column"):
        embedding_split(Manifest(recs + [_rec("e", "z")]))


def test_generic_song_split_is_sorted_and_keeps_complete_singers():
    songs = [f"song{j}" for j in range(5)]  # 3 / 1 / 1 songs
    recs = [_rec(f"s{i}", s) for i in range(3) for s in songs]
    recs = [r for r in recs if not (r.singer == "s2" and r.song == "song1")]  # s2 misses one
    out = embedding_split(Manifest(recs))
    assert sorted({r.song for r in out["train"]}) == ["song0", "song1", "song2"]
    assert {r.song for r in out["validation"]} == {"song3"}
    assert {r.song for r in out["test"]} == {"song4"}
    assert {r.singer for r in out["train"]} == {"s0", "s1"}  # s2 did not sing all 3
    assert {r.singer for r in out["test"]} == {"s0", "s1", "s2"}
    loose = embedding_split(Manifest(recs), require_all_songs=False)
    assert len(loose["train"]) == 8
    assert embedding_split(Manifest(list(reversed(recs))))["train"].songs == \
        out["train"].songs


def test_fractions_and_too_few_songs():
    songs = [f"t{j:02d}" for j in range(10)]
    out = embedding_split(Manifest([_rec("a", s) for s in songs]))
    assert [len(out[k]) for k in ("train", "validation", "test")] == [6, 2, 2]
    with pytest.raises(ManifestError, match="at least 3 songs"):
        embedding_split(Manifest([_rec("a", "x"), _rec("a", "y")]))
    with pytest.raises(ConfigError, match="fractions"):
        embedding_split(Manifest([_rec("a", s) for s in songs]), fractions=(0.5, 0.5, 0.5))


def test_speech_without_songs_splits_by_speaker():
    recs = [_rec(f"spk{i}", n=j) for i in range(5) for j in range(3)]
    out = embedding_split(Manifest(recs))
    speakers = {k: {r.singer for r in v} for k, v in out.items()}
    assert speakers == {"train": {"spk0", "spk1", "spk2"}, "validation": {"spk3"},
                        "test": {"spk4"}}
    assert sum(len(v) for v in out.values()) == 15


def test_partly_missing_songs_are_rejected():
    with pytest.raises(ManifestError, match="1 of 2 recordings have no song"):
        embedding_split(Manifest([_rec("a", "x"), _rec("b")]))


def test_damp_balanced_songs_use_the_papers_split(caplog):
    # Singer "full" sang all 14 songs; "train_only" only the first 6.
    recs = [_rec("full", s.upper()) for s in DAMP_BALANCED_SONGS]
    recs += [_rec("train_only", s) for s in DAMP_BALANCED_SONGS[:6]]
    with caplog.at_level(logging.INFO):
        out = embedding_split(Manifest(recs))
    assert "DAMP-balanced" in caplog.text
    assert len(out["train"]) == 12 and len(out["validation"]) == 4 and len(out["test"]) == 4
    assert {r.singer for r in out["test"]} == {"full"}
    assert {r.split for r in out["test"]} == {"test"}


def test_on_a_generated_corpus(tmp_path):
    from singer_zoo.data.synthetic import generate_corpus

    m = read_manifest(generate_corpus(tmp_path, n_singers=3, n_songs=5, seconds=0.5))
    out = embedding_split(m)
    assert [len(out[k].songs) for k in ("train", "validation", "test")] == [3, 1, 1]
    assert all(len(out[k].singers) == 3 for k in out)
