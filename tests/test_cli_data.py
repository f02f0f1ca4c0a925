"""`singer-zoo data ...` and `singer-zoo features`, called in-process."""
import csv
import json
import logging

import numpy as np
import pytest

from singer_zoo.cli import main
from singer_zoo.data.manifest import read_manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    assert main(["data", "synth", str(out), "--singers", "2", "--songs", "2",
                 "--seconds", "3", "--seed", "1"]) == 0
    return out


def _bad_manifest(corpus, tmp_path):
    """The corpus plus a corrupt file and a missing one."""
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    lines = (corpus / "manifest.csv").read_text().splitlines()
    rows = [f"{corpus}/{line}" for line in lines[1:]]
    m = tmp_path / "m.csv"
    m.write_text("\n".join([lines[0], *rows, "junk.wav,x,,,", "gone.wav,y,,,"]) + "\n")
    return m


def test_synth_writes_corpus(corpus, capsys):
    man = read_manifest(corpus / "manifest.csv")
    assert len(man) == 4 and man.singers == ["singer00", "singer01"]
    assert main(["data", "synth", str(corpus / "f"), "--singers", "1", "--songs", "1",
                 "--seconds", "1", "--format", "flac"]) == 0
    assert (corpus / "f" / "audio" / "singer00_song00.flac").is_file()
    assert "wrote 1 recordings" in capsys.readouterr().out


def test_check_good_manifest(corpus, capsys):
    assert main(["data", "check", str(corpus / "manifest.csv")]) == 0
    out = capsys.readouterr().out
    assert "4 recordings, 2 singers, 2 songs, total duration 0:00:12 (12.0 s)" in out
    assert "4 good, 0 bad" in out


def test_check_reports_bad_files(corpus, tmp_path, capsys):
    assert main(["data", "check", str(_bad_manifest(corpus, tmp_path))]) == 1
    out = capsys.readouterr().out
    bad = [line for line in out.splitlines() if line.startswith("bad ")]
    assert len(bad) == 2 and "junk.wav" in bad[0] and "gone.wav" in bad[1]
    assert "4 good, 2 bad" in out


def test_check_malformed_manifest_exits_2(tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_text("file,who\na.wav,x\n")
    assert main(["data", "check", str(m)]) == 2
    assert "missing required column(s) ['path', 'singer']" in capsys.readouterr().err


def test_split_balanced_writes_three_manifests(tmp_path, capsys):
    songs = [f"s{j}" for j in range(9)]
    rows = [f"{i}_{j}.wav,u{i},{songs[j]}" for i in range(3) for j in range(9)
            if not (i == 2 and j == 0)]  # u2 misses s0: dropped from train
    m = tmp_path / "all.csv"
    m.write_text("path,singer,song\n" + "\n".join(rows) + "\n")
    assert main(["data", "split-balanced", str(m), "--out", str(tmp_path / "split"),
                 "--songs", *songs]) == 0
    parts = {s: read_manifest(tmp_path / "split" / f"{s}.csv", check_files=False)
             for s in ("train", "validation", "test")}
    assert (len(parts["train"]), len(parts["validation"]), len(parts["test"])) == (2, 12, 12)
    assert {r.split for r in parts["test"]} == {"test"}
    assert parts["train"][0].path == str(tmp_path / "0_0.wav")
    assert "train: 2 performances by 2 singers" in capsys.readouterr().out
    assert main(["data", "split-balanced", str(m), "--out", str(tmp_path / "x"),
                 "--songs", *songs, "--test-songs", "s0"]) == 2


def test_features_writes_npy_and_index_despite_bad_files(corpus, tmp_path, capsys, caplog):
    out = tmp_path / "feats"
    with caplog.at_level(logging.WARNING):
        code = main(["features", str(_bad_manifest(corpus, tmp_path)), "--out", str(out),
                     "--cache", str(tmp_path / "cache"), "--workers", "2"])
    assert code == 1
    printed = capsys.readouterr().out
    assert sum(line.startswith("bad ") for line in printed.splitlines()) == 2
    # said once, by the command: run_batch's own warnings are muted under the CLI
    assert not [r for r in caplog.records if r.name == "singer_zoo.batch"]
    with open(out / "index.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["recording"] for r in rows] == [f"singer0{i}_song0{j}" for i in (0, 1)
                                              for j in (0, 1)]
    frames = 1 + 3 * 22050 // 512
    for r in rows:
        f = np.load(out / r["features"])
        assert f.shape == (frames, 96) and int(r["frames"]) == frames
        assert int(r["windows"]) == 1 and r["path"].endswith(f"{r['recording']}.wav")
    assert json.loads((out / "feature_config.json").read_text())["frontend"] == "mel"
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4
    good = tmp_path / "good.csv"
    good.write_text("\n".join((corpus / "manifest.csv").read_text().splitlines()[:2]) + "\n")
    (tmp_path / "audio").symlink_to(corpus / "audio")
    assert main(["features", str(good), "--out", str(tmp_path / "cqt"),
                 "--frontend", "cqt"]) == 0
    assert np.load(tmp_path / "cqt" / "singer00_song00.npy").shape == (frames, 96)
