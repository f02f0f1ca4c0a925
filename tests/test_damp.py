"""DAMP reader and the DAMP-balanced song split, on metadata built in tmp_path."""
import csv
import logging

import pytest

from singer_zoo.data.damp import DAMP_BALANCED_SONGS, damp_balanced_split, read_damp
from singer_zoo.data.manifest import Manifest, Recording
from singer_zoo.errors import ConfigError, ManifestError


def _damp(tmp_path, counts, song_col="arrangement", make_audio=True):
    """perfs.csv with singer p<i> having counts[i] performances, audio/<key>.m4a files."""
    (tmp_path / "audio").mkdir()
    rows = []
    for i, n in enumerate(counts):
        for k in range(n):
            key = f"perf{i}_{k}"
            rows.append({"perf_key": key, "plyrid": f"p{i}", song_col: f"song{k % 3}",
                         "country": "US"})
            if make_audio:
                (tmp_path / "audio" / f"{key}.m4a").write_bytes(b"x")
    with open(tmp_path / "perfs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_read_damp_keeps_singers_with_exactly_10(tmp_path):
    root = _damp(tmp_path, [10, 9, 10, 11])
    man = read_damp(root)
    assert man.singers == ["p0", "p2"] and len(man) == 20
    r = man[0]
    assert r.path == str(root.resolve() / "audio" / "perf0_0.m4a")
    assert r.recording == "perf0_0" and r.song == "song0"  # song from 'arrangement'
    assert r.extra["country"] == "US"
    assert len(read_damp(root, recordings_per_singer=0)) == 40


def test_read_damp_song_column_parameter(tmp_path):
    root = _damp(tmp_path, [10], song_col="weird_song")
    assert read_damp(root)[0].song == ""  # unknown name: no song
    assert read_damp(root, song_column="weird_song")[1].song == "song1"
    with pytest.raises(ManifestError, match="song column 'nope' not found"):
        read_damp(root, song_column="nope")


def test_read_damp_reports_missing_audio(tmp_path):
    root = _damp(tmp_path, [10, 10])
    (root / "audio" / "perf1_3.m4a").unlink()
    with pytest.raises(ManifestError) as e:
        read_damp(root)
    assert "perfs.csv" in str(e.value) and "1 of 20" in str(e.value)
    assert "perf1_3.m4a" in str(e.value)
    assert len(read_damp(root, check_files=False)) == 20


def test_read_damp_bad_metadata(tmp_path):
    with pytest.raises(ManifestError, match="DAMP metadata file not found"):
        read_damp(tmp_path)
    (tmp_path / "perfs.csv").write_text("key,player\n1,2\n")
    with pytest.raises(ManifestError, match=r"\['perf_key', 'plyrid'\]"):
        read_damp(tmp_path)
    (tmp_path / "perfs.csv").write_text("perf_key,plyrid\nk1,p\nk2,p\nk1,q\n")
    with pytest.raises(ManifestError, match="duplicate perf_key value.*k1"):
        read_damp(tmp_path, check_files=False)


def _balanced(song_sets, repeats=()):
    """A manifest where singer i sang song_sets[i] (indices into DAMP_BALANCED_SONGS)."""
    recs = []
    for i, songs in enumerate(song_sets):
        for j in songs:
            for k in range(2 if (i, j) in repeats else 1):
                name = DAMP_BALANCED_SONGS[j].upper() if k else DAMP_BALANCED_SONGS[j]
                recs.append(Recording(f"/d/{i}_{j}_{k}.m4a", f"u{i:03d}", name,
                                      f"{i:03d}_{j:02d}_{k}"))
    return Manifest(recs, "/d")


def test_paper_split_counts_and_dropped_singers():
    # 46 singers sang the first 6 songs, 22 the next 4, 56 the last 4 (the paper's numbers),
    # plus singers that each miss one song of a side and must be dropped from it
    train, val, test = range(6), range(6, 10), range(10, 14)
    sets = ([list(train)] * 40 + [list(train) + list(val)] * 6 + [list(val)] * 16
            + [list(test)] * 56 + [list(train)[:-1], list(val)[1:], list(test)[:3]])
    split = damp_balanced_split(_balanced(sets))
    counts = {k: (len(v), len(v.singers)) for k, v in split.items()}
    assert counts == {"train": (276, 46), "validation": (88, 22), "test": (224, 56)}
    assert {r.split for r in split["validation"]} == {"validation"}
    assert f"u{len(sets) - 1:03d}" not in split["test"].singers
    for side, songs in (("train", train), ("validation", val), ("test", test)):
        assert split[side].songs == sorted(DAMP_BALANCED_SONGS[j] for j in songs)


def test_repeated_performances_keep_one_and_warn(caplog):
    man = _balanced([list(range(10, 14))] * 2, repeats={(0, 11), (1, 13)})
    with caplog.at_level(logging.WARNING, logger="singer_zoo.data.damp"):
        test = damp_balanced_split(man)["test"]
    assert len(test) == 8
    assert "000_11_1" not in [r.recording for r in test]  # smallest id kept
    assert "test: 2 repeated performance(s)" in caplog.text


def test_other_6_4_split_and_case_insensitive_names():
    sets = [list(range(4))] * 5 + [list(range(4, 10))] * 3
    split = damp_balanced_split(_balanced(sets),
                                train_songs=[s.upper() for s in DAMP_BALANCED_SONGS[4:10]],
                                validation_songs=DAMP_BALANCED_SONGS[:4])
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (18, 20, 0)


@pytest.mark.parametrize("kw, problem", [
    ({"train_songs": ["one call away", "not a song"]}, "not in the song list"),
    ({"validation_songs": DAMP_BALANCED_SONGS[:4]},
     "validation song 'one call away' is also a train song"),
    ({"test_songs": DAMP_BALANCED_SONGS[:4]}, "must be one of the last 4"),
    ({"train_songs": DAMP_BALANCED_SONGS[-2:]}, "must be one of the first songs"),
    ({"train_songs": []}, "train songs are empty"),
])
def test_split_validation(kw, problem):
    with pytest.raises(ConfigError, match=problem):
        damp_balanced_split(_balanced([[0]]), **kw)


def test_custom_song_list():
    songs = [f"song{j:02d}" for j in range(9)]
    recs = [Recording(f"/d/{i}_{j}", f"s{i}", songs[j], f"{i}_{j}") for i in range(3)
            for j in range(9)]
    split = damp_balanced_split(Manifest(recs, "/d"), songs=songs)
    assert split["train"].songs == ["song00"] and len(split["validation"]) == 12
