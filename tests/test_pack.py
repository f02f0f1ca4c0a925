"""Training packs: uint8 features + labels in one .npz, read back with numpy only."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from singer_zoo.config import FeatureConfig
from singer_zoo.data.engine import Plan, SyntheticVoice, pack_stream, performances
from singer_zoo.data.engine.stream import Identity
from singer_zoo.data.pack import STEP, PackWriter, merge_packs, read_pack, step_db, write_pack
from singer_zoo.errors import ConfigError


def random_items(n=5, bins=96, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(0, 60, (int(rng.integers(100, 400)), bins)).astype(np.float32),
             f"singer{i % 3}", f"song{i % 2}", "src" + "ab"[i % 2], f"rec{i}")
            for i in range(n)]


def test_round_trip_within_half_a_step(tmp_path):
    items = random_items()
    path = write_pack(items, tmp_path / "p.npz", extra={"note": "x"})
    pack = read_pack(path)
    assert pack.n_recordings == 5 and pack.info["note"] == "x"
    assert pack.config == FeatureConfig()
    for (feat, singer, song, source, rec), got, r in zip(items, pack.features,
                                                          pack.recordings()):
        assert got.shape == feat.shape and got.dtype == np.float32
        assert np.abs(got - feat).max() <= STEP / 2 + 1e-6
        assert (r.singer, r.song, r.extra["source"], r.recording) == (singer, song, source, rec)
    assert pack.singer_names == ["singer0", "singer1", "singer2"]
    assert pack.hours == pytest.approx(sum(len(i[0]) for i in items) * 512 / 22050 / 3600)


def test_feature_set_and_labels(tmp_path):
    pack = read_pack(write_pack(random_items(), tmp_path / "p.npz"))
    fs, singers, songs = pack.feature_set()
    assert fs.n_recordings == 5
    np.testing.assert_array_equal(fs.features[3], pack.features[3])
    assert [pack.singer_names[s] for s in singers] == [f"singer{i % 3}" for i in range(5)]
    assert fs.window_labels(songs).shape == (fs.n_windows,)


def test_read_pack_needs_numpy_only(tmp_path):
    path = write_pack(random_items(), tmp_path / "p.npz")
    code = textwrap.dedent(f"""
        import sys
        for blocked in ("tensorflow", "librosa", "soundfile", "soxr", "av", "keras"):
            sys.modules[blocked] = None  # importing any of them now fails
        from singer_zoo.data.pack import read_pack
        pack = read_pack({str(path)!r})
        print(pack.n_recordings, len(pack.singer_names))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["5", "3"]


def test_bad_input_is_named(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="bad.npz"):
        read_pack(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ConfigError, match="missing"):
        read_pack(tmp_path / "other.npz")
    with pytest.raises(ConfigError, match="rec0"):
        PackWriter().add(np.zeros((10, 40)), "s", "g", "x", "rec0")
    with pytest.raises(ConfigError, match="no recordings"):
        PackWriter().write(tmp_path / "empty.npz")


def test_pack_stream_of_synthetic_singers(tmp_path):
    idents = (Identity("a", "a"), Identity("a~p1", "a", 3.0, 1.1, 1.1), Identity("b", "b"))
    plan = Plan((SyntheticVoice("a", 0), SyntheticVoice("b", 1)), idents,
                {"a": [0, 1], "a~p1": [1], "b": [0]}, seconds=6.5)
    path = pack_stream(performances(plan), tmp_path / "s.npz", extra={"plan": "test"})
    pack = read_pack(path)
    assert set(pack.recording) == {"a|s0-song000", "a|s0-song001", "a~p1|s0-song001",
                                   "b|s0-song000"}
    assert all(len(f) == 1 + int(6.5 * 22050) // 512 for f in pack.features)
    assert 0 <= min(f.min() for f in pack.features) and max(f.max() for f in pack.features) <= 60


def test_merge_packs_keeps_every_recording_and_label(tmp_path):
    items = random_items(6)
    a = write_pack(items[:2], tmp_path / "a.npz")
    b = write_pack(items[2:], tmp_path / "b.npz")
    merged = read_pack(merge_packs([a, b], tmp_path / "m.npz", extra={"k": 1}))
    whole = read_pack(write_pack(items, tmp_path / "w.npz"))
    assert merged.recordings() == whole.recordings() and merged.info["k"] == 1
    for x, y in zip(merged.features, whole.features):
        np.testing.assert_array_equal(x, y)
    write_pack(random_items(1, bins=40), tmp_path / "c.npz",
               FeatureConfig(n_bins=40))
    with pytest.raises(ConfigError, match="c.npz: features differ"):
        merge_packs([a, tmp_path / "c.npz"], tmp_path / "bad.npz")


def test_wider_dynamic_range_takes_a_coarser_step(tmp_path):
    """An 80-dB front end does not fit 255 steps of 0.25 dB: the pack takes 0.5-dB steps and
    keeps the whole range (top_db's loud end included) within half a step."""
    cfg = FeatureConfig(top_db=80.0)
    assert step_db(cfg) == 0.5 and step_db(FeatureConfig()) == STEP
    rng = np.random.default_rng(1)
    feat = rng.uniform(0, 80, (300, 96)).astype(np.float32)
    feat[0, 0] = 80.0
    pack = read_pack(write_pack([(feat, "a", "s", "src", "r0")], tmp_path / "p.npz", cfg))
    assert pack.config == cfg and pack.info["step_db"] == 0.5
    assert np.abs(pack.features[0] - feat).max() <= 0.25 + 1e-6
    assert pack.features[0][0, 0] == 80.0
