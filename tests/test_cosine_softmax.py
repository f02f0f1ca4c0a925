"""Cosine-softmax training of a unit-length embedder (singer_zoo.training.cosine_softmax):
it generalises to singers it never saw (inference mode), refuses rows without unit
embeddings and overlapping validation singers, and a killed run resumes.

Corpus: 12 generated singers x 4 songs x 6 s; singers 0-5 train, 6-7 validate (early
stopping), 8-11 are the held-out test. The x-vector row with 64-frame windows. Measured here
(one run, loaded machine): held-out EER 0.19 after 60 steps of 32 windows, 0.47 for the
same network untrained (chance 0.5).
"""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from singer_zoo.data import generate_corpus, load_feature_set, read_manifest
from singer_zoo.errors import ConfigError
from singer_zoo.evaluation import verification_eer
from singer_zoo.models import build_embedder
from singer_zoo.registry import get_config
from singer_zoo.training import TrainData
from singer_zoo.training.cosine_softmax import MarginCrossEntropy, train_cosine_softmax

CFG = get_config("mobile_tdnn_statistics").replace(
    features={"window_frames": 64, "window_hop_frames": 8})


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("cos_corpus")
    manifest = read_manifest(generate_corpus(root, n_singers=12, n_songs=4, seconds=6, seed=1))
    out = []
    for names in (range(6), range(6, 8), range(8, 12)):
        recs = manifest.filter(singer=tuple(f"singer{i:02d}" for i in names))
        fs, bad = load_feature_set(recs, CFG.features, cache_dir=root / "cache")
        assert bad == {}
        out.append(TrainData(fs, np.array([int(r.singer[-2:]) for r in fs.recordings])))
    return out


@pytest.fixture(scope="module")
def trained(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("cos_run")
    metrics = train_cosine_softmax(CFG, splits[0], splits[1], out, steps=60, batch_size=32,
                                   validate_every=20, val_batches=4, precise_bn_batches=10,
                                   log=lambda *_: None)
    return keras.saving.load_model(out / "embedder.keras"), metrics, out


def heldout_eer(embedder, test) -> float:
    vectors = np.stack([np.asarray(embedder(test.features.recording_windows(i),
                                            training=False)).mean(0)
                        for i in range(test.features.n_recordings)])
    return verification_eer(vectors, test.labels).eer


def test_embedder_separates_singers_it_never_saw(trained, splits):
    embedder, metrics, out = trained
    test = splits[2]
    eer = heldout_eer(embedder, test)
    keras.utils.set_random_seed(0)
    untrained_eer = heldout_eer(build_embedder(CFG), test)
    assert eer < 0.3, f"held-out EER {eer:.3f} (chance 0.5)"
    assert untrained_eer - eer > 0.15, f"EER {eer:.3f}, untrained {untrained_eer:.3f}"
    unit = np.linalg.norm(embedder(test.features.recording_windows(0), training=False), axis=1)
    np.testing.assert_allclose(unit, 1.0, rtol=1e-5)
    assert metrics["training_singers"] == 6 and metrics["validation_singers"] == 2
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0] == "step,loss,accuracy,val_eer" and len(rows) == 1 + 3
    assert not (out / "latest.keras").exists()


def test_margin_cross_entropy_takes_the_margin_off_the_true_logit_only():
    logits = np.array([[4.0, 1.0, -2.0], [0.5, 3.0, 1.0]], "float32")
    labels = np.array([0, 2])
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    np.testing.assert_allclose(MarginCrossEntropy(16.0, 0.0, reduction=None)(labels, logits),
                               plain(labels, logits), rtol=1e-6)
    shifted = logits - 16.0 * 0.25 * np.eye(3, dtype="float32")[labels]
    np.testing.assert_allclose(MarginCrossEntropy(16.0, 0.25, reduction=None)(labels, logits),
                               plain(labels, shifted), rtol=1e-6)
    again = MarginCrossEntropy.from_config(MarginCrossEntropy(16.0, 0.2).get_config())
    assert (again.scale, again.margin) == (16.0, 0.2)


def test_margin_embedder_separates_singers_it_never_saw(splits, tmp_path):
    metrics = train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=60,
                                   batch_size=32, validate_every=20, val_batches=4,
                                   precise_bn_batches=10, margin=0.2, log=lambda *_: None)
    eer = heldout_eer(keras.saving.load_model(tmp_path / "embedder.keras"), splits[2])
    assert metrics["margin"] == 0.2 and eer < 0.3, f"held-out EER {eer:.3f} (chance 0.5)"


def test_a_killed_run_resumes_where_it_stopped(splits, tmp_path):
    class Killed(Exception):
        pass

    def kill_at_first_validation(line):
        if line.startswith("step 20:"):
            raise Killed

    with pytest.raises(Killed):
        train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=40, batch_size=16,
                             validate_every=20, val_batches=2, precise_bn_batches=2,
                             margin=0.1, log=kill_at_first_validation)
    assert json.loads((tmp_path / "state.json").read_text())["step"] == 20
    said = []
    metrics = train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=40,
                                   batch_size=16, validate_every=20, val_batches=2,
                                   precise_bn_batches=2, margin=0.1, log=said.append)
    assert said[0].startswith("resuming at step 20") and said[1].startswith("step 40:")
    assert metrics["steps"] == 40 and (tmp_path / "embedder.keras").is_file()
    again = []
    assert train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=40,
                                log=again.append) == metrics and "already trained" in again[0]


def test_refuses_rows_without_unit_embeddings_and_shared_singers(splits, tmp_path):
    with pytest.raises(ConfigError, match="unit_embedding"):
        train_cosine_softmax(get_config("mobile_resnext_attention"), splits[0], splits[1],
                             tmp_path, steps=1)
    with pytest.raises(ConfigError, match="validation singers"):
        train_cosine_softmax(CFG, splits[0], splits[0], tmp_path, steps=1)
    with pytest.raises(ConfigError, match="margin"):
        train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=1, margin=1.5)


def test_spec_augment_masks_bands_and_spans_with_the_window_mean():
    from singer_zoo.data.batches import spec_augment

    x = np.random.default_rng(0).uniform(0, 60, (64, 40, 16)).astype("float32")
    y = spec_augment(x, np.random.default_rng(1), bands=1, band_bins=4, spans=1, span_frames=8)
    assert y.shape == x.shape and not np.shares_memory(x, y)
    changed = y != x
    assert 0 < changed.mean() < 0.5
    for i in range(len(x)):  # every changed value is that window's mean
        np.testing.assert_allclose(y[i][changed[i]], x[i].mean(), rtol=1e-5)
    np.testing.assert_array_equal(y, spec_augment(x, np.random.default_rng(1), bands=1,
                                                  band_bins=4, spans=1, span_frames=8))


def test_short_crops_tile_a_contiguous_crop_of_each_chosen_window():
    from singer_zoo.data.batches import short_crops

    x = np.random.default_rng(0).uniform(0, 60, (200, 40, 8)).astype("float32")
    y = short_crops(x, np.random.default_rng(1), fraction=0.25, min_frames=10)
    assert y.shape == x.shape and not np.shares_memory(x, y)
    changed = [i for i in range(len(x)) if not np.array_equal(x[i], y[i])]
    assert 30 < len(changed) < 70  # a quarter of 200
    for i in changed:  # y[i] repeats its first `length` frames, a crop of x[i] of >= 10
        length = next(n for n in range(10, 40) if np.array_equal(y[i, n:], y[i, :40 - n]))
        start = next(s for s in range(41 - length)
                     if np.array_equal(x[i, s:s + length], y[i, :length]))
        assert 0 <= start <= 40 - length
    np.testing.assert_array_equal(x, short_crops(x, np.random.default_rng(1), fraction=0.0))


def test_channel_eq_adds_one_smooth_curve_per_window_and_keeps_range_and_floor():
    from singer_zoo.data.batches import channel_eq

    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(40, 15, (32, 50, 24)), 0, 80).astype("float32")
    x[:, :, :3] = 0.0  # bins below the front end's range
    y = channel_eq(x, np.random.default_rng(1), max_db=10.0)
    assert y.shape == x.shape and not np.shares_memory(x, y)
    np.testing.assert_array_equal(y[x == 0], 0.0)
    np.testing.assert_allclose(y.max(axis=(1, 2)), x.max(axis=(1, 2)))
    inside = (x > 1) & (x < 79) & (y > 1) & (y < 79)  # neither clip touched these
    gain = np.where(inside, y - x, np.nan)[:, :, 3:]  # (window, frame, bin)
    per_bin = np.nanmean(gain, axis=1)  # the same gain in every frame of a window
    np.testing.assert_allclose(np.nanstd(gain, axis=1), 0.0, atol=1e-3)
    spread = np.nanmax(per_bin, 1) - np.nanmin(per_bin, 1)
    assert 0 < np.median(spread) <= 20.0 and len(set(np.round(spread, 3))) > 20
    np.testing.assert_array_equal(y, channel_eq(x, np.random.default_rng(1), max_db=10.0))


def test_weight_averaging_keeps_the_mean_of_the_last_validations(splits, tmp_path):
    """`average=2` over 40 steps validated every 20: the kept embedder's trainable weights
    are the mean of the two snapshots (precise BN changes only the moving statistics), and
    it separates the held-out singers (EER 0.23 in one run here; untrained 0.47)."""
    metrics = train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=40,
                                   batch_size=32, validate_every=20, val_batches=2,
                                   precise_bn_batches=4, average=2, log=lambda *_: None)
    assert metrics["kept"] == "mean of the last 2 validations"
    files = sorted((tmp_path / "snapshots").glob("*.weights.h5"))
    assert [f.name for f in files] == ["step20.weights.h5", "step40.weights.h5"]
    kept = keras.saving.load_model(tmp_path / "embedder.keras")
    snaps = []
    for f in files:
        kept.load_weights(f)
        snaps.append([np.asarray(v) for v in kept.trainable_weights])
    kept = keras.saving.load_model(tmp_path / "embedder.keras")
    for i, v in enumerate(kept.trainable_weights):
        np.testing.assert_allclose(np.asarray(v), (snaps[0][i] + snaps[1][i]) / 2, atol=1e-6)
    assert not np.allclose(snaps[0][0], snaps[1][0])  # the two snapshots differ
    test = splits[2]
    vectors = np.stack([np.asarray(kept(test.features.recording_windows(i), training=False))
                        .mean(0) for i in range(test.features.n_recordings)])
    eer = verification_eer(vectors, test.labels).eer
    assert eer < 0.35, f"held-out EER {eer:.3f} of the averaged embedder (chance 0.5)"
    with pytest.raises(ConfigError, match="validates 2 times"):
        train_cosine_softmax(CFG, splits[0], splits[1], tmp_path / "x", steps=40,
                             validate_every=20, average=3)


def test_weight_averaging_takes_exactly_the_last_validations_of_an_uneven_run(splits,
                                                                                tmp_path):
    """50 steps validated every 20 validate at 20, 40 and 50: `average=2` keeps 40 and 50."""
    train_cosine_softmax(CFG, splits[0], splits[1], tmp_path, steps=50, batch_size=16,
                         validate_every=20, val_batches=2, precise_bn_batches=2, average=2,
                         log=lambda *_: None)
    assert sorted(f.name for f in (tmp_path / "snapshots").iterdir()) == \
        ["step40.weights.h5", "step50.weights.h5"]
