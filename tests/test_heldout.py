"""Held-out evaluation (`singer-zoo heldout`), threshold calibration and `Embedder.verify`."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import singer_zoo
from singer_zoo.cli import main
from singer_zoo.data.synthetic import generate_corpus
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation import heldout as ho
from singer_zoo.export import export
from test_export import make_run


def clusters(n_singers=4, per=3, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_singers, 8)) * 3
    x = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(n_singers * per, 8))
    singers = np.repeat(np.arange(n_singers), per).astype(str)
    songs = np.tile(np.arange(per), n_singers).astype(str)
    return x, singers, songs


def test_metrics_of_separated_and_of_song_clustered_vectors():
    x, singers, songs = clusters()
    m = ho.set_metrics(x, singers, songs, sung=True)
    assert m == {"singer_1nn": 1.0, "eer_all": 0.0, "eer_hard": 0.0, "song_1nn": 0.0}
    by_song = ho.set_metrics(x, songs, singers, sung=True)  # vectors that cluster by song
    assert by_song["singer_1nn"] == 0.0 and by_song["song_1nn"] == 1.0
    assert by_song["eer_hard"] == 1.0
    assert set(ho.set_metrics(x, singers, songs, sung=False)) == {"singer_1nn", "eer_all"}


def test_calibrated_threshold_separates_and_reports_its_errors():
    x, singers, _ = clusters()
    cal = ho.calibrate({"sung": (x, singers), "speech": clusters(seed=1)[:2]})
    assert cal["false_accept"] == 0.0 and cal["false_reject"] == 0.0
    within = max(np.sum((a - b) ** 2) for s in np.unique(singers)
                 for a in x[singers == s] for b in x[singers == s])
    assert within <= cal["threshold"]
    assert cal["pairs"] == 2 * 66 and set(cal["per_set"]) == {"sung", "speech"}
    noisy = ho.calibrate({"sung": clusters(per=5, spread=2.5)[:2]})  # overlapping singers
    assert 0 < noisy["false_accept"] < 0.2 and 0 < noisy["false_reject"] < 0.2
    assert abs(noisy["false_accept"] - noisy["false_reject"]) < 0.05  # the EER point


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    generate_corpus(root / "sung", n_singers=4, n_songs=3, seconds=7.0, seed=3)
    generate_corpus(root / "speech_src", n_singers=3, n_songs=2, seconds=5.0, seed=4)
    (root / "speech").mkdir()
    with open(root / "speech_src" / "manifest.csv") as fh, \
            open(root / "speech" / "manifest.csv", "w", newline="") as out:
        w = csv.DictWriter(out, ["path", "singer", "song"])
        w.writeheader()
        for r in csv.DictReader(fh):  # speech: no song; one file is not audio at all
            w.writerow({"path": f"../speech_src/{r['path']}", "singer": r["singer"], "song": ""})
        (root / "speech" / "broken.wav").write_bytes(b"RIFF not audio")
        w.writerow({"path": "broken.wav", "singer": "singer00", "song": ""})
    (root / "sung_rooms").mkdir()  # the reverberant copy of the sung set: here 2 songs of it
    with open(root / "sung" / "manifest.csv") as fh, \
            open(root / "sung_rooms" / "manifest.csv", "w", newline="") as out:
        w = csv.DictWriter(out, ["path", "singer", "song"])
        w.writeheader()
        for r in csv.DictReader(fh):
            if not r["song"].endswith("2"):
                w.writerow({"path": f"../sung/{r['path']}", "singer": r["singer"],
                            "song": r["song"]})
    make_run(root / "run")
    model = export(root / "run", root / "model", ()).path
    return root, model


def test_heldout_command_scores_everything_and_calibrates(sets, capsys):
    root, model = sets
    out = root / "out"
    assert main(["heldout", str(root), str(root / "run" / "best.keras"), str(model),
                 "--out", str(out), "--write-thresholds"]) == 0
    report = json.loads((out / "heldout.json").read_text())
    res = report["results"]
    assert set(res) == {*ho.BASELINES, "untrained mobile_resnext_attention",
                        "run/best.keras", str(model)}
    assert report["sets"]["speech"]["recordings"] == 6  # the broken file is left out, said
    assert "broken.wav" in capsys.readouterr().out
    assert res["MFCC mean+std"]["sung"]["singer_1nn"] > 0.5  # chance: 0.25
    assert res["MFCC mean+std, cosine"] != res["MFCC mean+std"]  # same vectors, unit length
    for r in res.values():
        assert set(r["sung"]) == {"singer_1nn", "eer_all", "eer_hard", "song_1nn"}
        assert set(r["speech"]) == {"singer_1nn", "eer_all"}
        assert set(r["sung_rooms"]) == {"singer_1nn", "eer_all", "eer_hard", "song_1nn"}
    assert report["sets"]["sung_rooms"] == {"recordings": 8, "singers": 4, "songs": 2}
    # the same network through its .keras file and its export: the same vectors
    for name in ("sung", "sung_rooms", "speech"):
        assert res["run/best.keras"][name] == pytest.approx(res[str(model)][name], abs=1e-6)
    table = (out / "heldout.md").read_text()
    assert table.count("\n") == 2 + 6 and "sung: EER, hard" in table
    assert "rooms: EER, hard" in table and (out / "tsne_sung_rooms.png").is_file()
    assert (out / "tsne_sung.png").stat().st_size > 0 and (out / "tsne_speech.png").is_file()
    assert set(report["calibration"]) == set(res) - set(ho.BASELINES)
    emb = singer_zoo.load(model)
    assert emb.card["verification"]["threshold"] == report["calibration"][str(model)][
        "threshold"]
    assert emb.card["heldout"]["results"] == {k: res[k] for k in (str(model), *ho.BASELINES)}
    a, b = (str(root / "sung" / "audio" / f"singer0{i}_song00.wav") for i in (0, 1))
    v = emb.verify(a, b)
    assert v["same"] == (v["distance"] <= v["threshold"])
    assert emb.verify(a, emb.embed(a))["same"] and emb.verify(a, a)["distance"] == 0.0


def test_verify_needs_a_calibrated_card(tmp_path):
    make_run(tmp_path / "run")
    emb = singer_zoo.load(export(tmp_path / "run", tmp_path / "m", ()).path)
    with pytest.raises(ConfigError, match="no calibrated threshold"):
        emb.verify(np.zeros(emb.dim), np.zeros(emb.dim))


def test_no_sets_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no held-out set"):
        ho.load_sets(tmp_path)


def test_same_source_1nn_sees_through_the_channel():
    rng = np.random.default_rng(0)
    sources = np.repeat(["A", "A", "B", "C"], 10)
    singers = np.repeat(["a1", "a2", "b1", "c1"], 10)
    centre = {"A": 0.0, "B": 10.0, "C": 20.0}
    channel_only = np.array([[centre[s]] for s in sources]) + rng.normal(0, 0.5, (40, 1))
    m = ho.set_metrics(channel_only, singers, None, sung=False, sources=sources)
    # B and C are told by channel; A's two singers only by chance, and only A is scored
    assert m["singer_1nn"] > m["singer_1nn_same_source"] and m["singer_1nn_same_source"] < 0.8
    voice = np.concatenate([channel_only, np.repeat([[0.0], [5.0], [0.0], [0.0]], 10, 0)], 1)
    assert ho.same_source_1nn(voice, singers, sources) == 1.0
    assert ho.same_source_1nn(voice, singers, singers) is None  # one singer per source


def test_a_keras_file_is_scored_on_its_own_front_end(sets, tmp_path):
    """A `.keras` embedder of a row with its own front end (here the 80-dB row) is fed that
    front end's windows, not the defaults'."""
    import argparse

    from singer_zoo.cli.heldout import methods_for
    from singer_zoo.config import FeatureConfig

    net = ho.untrained_embedder("mobile_tdnn_statistics_80db")
    assert net.features == FeatureConfig(top_db=80.0)
    net.save(tmp_path / "emb.keras")

    class Spy(ho.Windows):
        seen = set()

        def __call__(self, path, cfg):
            self.seen.add(cfg)
            return super().__call__(path, cfg)

    args = argparse.Namespace(no_baselines=True, untrained="mobile_tdnn_statistics_80db",
                              embedders=[str(tmp_path / "emb.keras")])
    methods, _ = methods_for(args, Spy())
    sung = ho.load_sets(sets[0])[0]
    for fn in methods.values():
        assert fn(sung).shape == (len(sung.manifest), 16)
    assert Spy.seen == {FeatureConfig(top_db=80.0)}
