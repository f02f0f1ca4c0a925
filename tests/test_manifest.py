"""Manifest CSV reading, validation errors, filtering and atomic writing."""
import os

import pytest

from singer_zoo.data.manifest import Manifest, Recording, read_manifest
from singer_zoo.errors import ConfigError, ManifestError


def _write(tmp_path, text, files=()):
    for f in files:
        p = tmp_path / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    m = tmp_path / "manifest.csv"
    m.write_text(text, encoding="utf-8")
    return m


def test_read_relative_paths_defaults_and_extra_columns(tmp_path):
    m = _write(tmp_path, "path,singer,song,gender\na/1.wav,ann,s1,f\na/2.wav, bob ,s2,m\n",
               ["a/1.wav", "a/2.wav"])
    man = read_manifest(m)
    assert len(man) == 2 and man.root == tmp_path.resolve()
    r = man[0]
    assert r.path == str((tmp_path / "a/1.wav").resolve())
    assert r.recording == "a/1.wav"  # defaults to the path as written
    assert r.extra == {"gender": "f"} and r.split == ""
    assert man[1].singer == "bob"  # values are stripped
    assert man.singers == ["ann", "bob"] and man.songs == ["s1", "s2"]


def test_absolute_paths_and_blank_rows(tmp_path):
    audio = tmp_path / "elsewhere" / "x.flac"
    audio.parent.mkdir()
    audio.write_bytes(b"x")
    m = _write(tmp_path, f"singer,path\nann,{audio}\n,\n")
    man = read_manifest(m)
    assert [r.path for r in man] == [str(audio)]


def test_missing_required_columns_names_them_and_found(tmp_path):
    m = _write(tmp_path, "file,artist\na.wav,ann\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(m)
    msg = str(e.value)
    assert str(m) in msg and "['path', 'singer']" in msg and "['file', 'artist']" in msg


def test_empty_singer_gives_row_numbers(tmp_path):
    m = _write(tmp_path, "path,singer\na.wav,ann\nb.wav,\nc.wav,\n", ["a.wav", "b.wav", "c.wav"])
    with pytest.raises(ManifestError, match=r"empty 'singer' in row\(s\) 3, 4"):
        read_manifest(m)


def test_missing_files_listed_with_count(tmp_path):
    rows = "".join(f"f{i}.wav,ann\n" for i in range(12))
    m = _write(tmp_path, "path,singer\n" + rows, ["f0.wav"])
    with pytest.raises(ManifestError) as e:
        read_manifest(m)
    msg = str(e.value)
    assert "11 audio file(s) not found" in msg and "(11 in all)" in msg and "f1.wav" in msg
    assert read_manifest(m, check_files=False)[5].path.endswith("f5.wav")


def test_duplicate_path_and_recording_id(tmp_path):
    m = _write(tmp_path, "path,singer\na.wav,ann\n./a.wav,bob\n", ["a.wav"])
    with pytest.raises(ManifestError, match="row 3 repeats the path of row 2"):
        read_manifest(m)
    m = _write(tmp_path, "path,singer,recording\na.wav,ann,r1\nb.wav,ann,r1\n",
               ["a.wav", "b.wav"])
    with pytest.raises(ManifestError, match="repeats the recording of row 2"):
        read_manifest(m)


def test_unknown_split_values(tmp_path):
    m = _write(tmp_path, "path,singer,split\na.wav,ann,train\nb.wav,ann,dev\n",
               ["a.wav", "b.wav"])
    with pytest.raises(ManifestError, match=r"3 \('dev'\).*valid: train, validation, test"):
        read_manifest(m)
    assert [r.split for r in read_manifest(m, splits=None)] == ["train", "dev"]


@pytest.mark.parametrize("text, problem", [(None, "not found"), ("", "missing required"),
                                           ("path,singer\n", "no rows")])
def test_unusable_files(tmp_path, text, problem):
    m = tmp_path / "m.csv"
    if text is not None:
        m.write_text(text)
    with pytest.raises(ManifestError, match=problem):
        read_manifest(m)


def test_filter_subset_and_slicing(tmp_path):
    recs = [Recording(str(tmp_path / f"{s}{k}.wav"), s, f"song{k}", f"{s}{k}")
            for s in "ab" for k in range(3)]
    man = Manifest.from_records(recs, tmp_path)
    assert [r.recording for r in man.filter(singer="a", song=("song0", "song2"))] == \
        ["a0", "a2"]
    assert len(man.filter(lambda r: r.song != "song1")) == 4
    assert [r.recording for r in man.subset([5, 0])] == ["b2", "a0"]
    assert isinstance(man[1:3], Manifest) and len(man[1:3]) == 2
    with pytest.raises(ConfigError, match="unknown field"):
        man.filter(artist="x")


def test_write_round_trip_relative_and_atomic(tmp_path):
    m = _write(tmp_path, "path,singer,song,gender\nsub/a.wav,ann,s,f\n", ["sub/a.wav"])
    outside = tmp_path.parent / f"{tmp_path.name}_outside.wav"
    man = read_manifest(m, check_files=False)
    man = Manifest.from_records(list(man) + [Recording(str(outside), "bob", "t", "o")],
                                man.root)
    out = man.write(tmp_path / "copy" / "m2.csv")
    text = out.read_text()
    assert text.splitlines()[0] == "path,singer,song,recording,split,gender"
    assert "../sub/a.wav" not in text and str(outside) in text  # not under copy/: absolute
    back = read_manifest(out, check_files=False)
    assert [r.path for r in back] == [r.path for r in man]
    assert back[0].extra == {"gender": "f"} and back[1].recording == "o"
    assert not [f for f in os.listdir(out.parent) if f.endswith(".tmp")]
