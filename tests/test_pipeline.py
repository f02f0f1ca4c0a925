"""Feature sets, the feature cache and the tf.data window / pair datasets."""
import os

import numpy as np
import pytest

from singer_zoo import features as feats
from singer_zoo.batch import Workers
from singer_zoo.config import FeatureConfig
from singer_zoo.data import pipeline
from singer_zoo.data.manifest import Manifest, Recording, read_manifest
from singer_zoo.data.pipeline import FeatureSet, encode_labels, load_feature_set
from singer_zoo.data.synthetic import generate_corpus
from singer_zoo.data.tfdata import pair_dataset, window_dataset
from singer_zoo.errors import ConfigError

SMALL = FeatureConfig(n_bins=8, window_frames=16, window_hop_frames=4)


def _random_set(frames=(40, 10, 24, 30), singers=("a", "a", "b", "c"), seed=0):
    """A FeatureSet of random matrices (every window distinct) without audio."""
    rng = np.random.default_rng(seed)
    recs = [Recording(f"/x/{i}.wav", s, "", f"r{i}") for i, s in enumerate(singers)]
    return FeatureSet([rng.random((n, 8), np.float32) * 60 for n in frames], recs, SMALL)


def _locate(fs):
    """window bytes -> (recording, start), to identify windows coming out of a dataset."""
    return {fs.windows([i]).tobytes(): tuple(fs.window_index[i]) for i in range(fs.n_windows)}


def test_window_index_follows_chop():
    fs = _random_set()
    rng = np.random.default_rng(0)  # _random_set's inputs, drawn again
    for f, n in zip(fs.features, (40, 10, 24, 30)):  # views of one matrix, values kept
        assert np.array_equal(f, rng.random((n, 8), np.float32) * 60)
        assert np.shares_memory(f, fs.frames)
    assert fs.frames.shape == (40 + 16 + 24 + 30, 8)  # the 10-frame one tiled to 16
    # 40 frames: 1 + (40 - 16) // 4 = 7 windows; 10 frames: tiled to one window
    assert [int((fs.window_index[:, 0] == i).sum()) for i in range(4)] == [7, 1, 3, 4]
    for i in range(4):
        assert np.array_equal(fs.recording_windows(i), feats.chop(fs.features[i], SMALL))
    assert np.array_equal(fs.recording_windows(1)[0, 10:], fs.features[1][:6])
    sub = fs.subset([2, 0])
    assert [r.recording for r in sub.recordings] == ["r2", "r0"] and sub.n_windows == 10
    with pytest.raises(ConfigError, match="shape"):
        FeatureSet([np.zeros((20, 5))], [Recording("/x/a.wav", "a")], SMALL)


def test_frames_tensor_shares_memory():
    fs = _random_set()
    assert fs.frames.ctypes.data % 64 == 0  # TF's alignment for a shared buffer
    t = fs.frames_tensor()
    assert t is fs.frames_tensor() and t.shape == fs.frames.shape
    fs.frames[3, 2] = -7.0  # no copy: the tensor sees numpy's change
    assert float(t[3, 2]) == -7.0


def test_encode_labels():
    codes, classes = encode_labels(["b", "a", "b", "c"])
    assert codes.dtype == np.int32 and codes.tolist() == [1, 0, 1, 2]
    assert classes == ["a", "b", "c"]


def _collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys), [len(y) for y in ys]


def test_window_dataset_one_pass_shuffled_and_deterministic():
    fs = _random_set()
    labels, _ = encode_labels([r.singer for r in fs.recordings])
    x, y, sizes = _collect(window_dataset(fs, labels, batch_size=4, shuffle=False))
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (15, 16, 8)
    assert sizes == [4, 4, 4, 3]
    assert np.array_equal(x, fs.windows(np.arange(15)))
    assert np.array_equal(y, fs.window_labels(labels))
    ds = window_dataset(fs, labels, batch_size=4, seed=1)
    x1, y1, _ = _collect(ds)
    x2, _, _ = _collect(ds)  # batches are addressed by number: a second pass replays
    x3, _, _ = _collect(window_dataset(fs, labels, batch_size=4, seed=1))
    where = _locate(fs)
    assert sorted(where[w.tobytes()] for w in x1) == sorted(where.values())  # each once
    for w, lab in zip(x1, y1):
        assert labels[where[w.tobytes()][0]] == lab
    assert not np.array_equal(x1, x) and np.array_equal(x1, x2)
    assert np.array_equal(x1, x3)


def test_window_dataset_repeat_gives_full_batches_and_checks_labels():
    fs = _random_set()
    ds = window_dataset(fs, [0, 0, 1, 2], batch_size=4, repeat=True)
    sizes = [int(y.shape[0]) for _, y in ds.take(10)]  # 40 windows: more than one pass
    assert sizes == [4] * 10
    with pytest.raises(ConfigError, match="one label per recording"):
        window_dataset(fs, [0, 1], batch_size=4)


def test_pair_dataset_balanced_valid_pairs_deterministic():
    fs = _random_set(frames=(40, 30, 24, 30, 20), singers=("a", "a", "b", "c", "c"))
    labels, _ = encode_labels([r.singer for r in fs.recordings])
    where = _locate(fs)
    ds = pair_dataset(fs, labels, batch_size=8, seed=3)
    batches = list(ds.take(5))
    for (x1, x2), y in batches:
        assert x1.shape == x2.shape == (8, 16, 8) and y.dtype.name == "float32"
        assert float(y.numpy().sum()) == 4.0  # exactly 1:1
        for a, b, same in zip(x1.numpy(), x2.numpy(), y.numpy()):
            (ra, sa), (rb, sb) = where[a.tobytes()], where[b.tobytes()]
            assert (labels[ra] == labels[rb]) == bool(same)
            if same and labels[ra] != 1:  # singers a and c have two recordings each
                assert ra != rb
            if same:
                assert (ra, sa) != (rb, sb)
    again = list(pair_dataset(fs, labels, batch_size=8, seed=3).take(5))
    for ((a1, a2), ay), ((b1, b2), by) in zip(batches, again):
        assert np.array_equal(a1, b1) and np.array_equal(a2, b2) and np.array_equal(ay, by)
    other = next(iter(pair_dataset(fs, labels, batch_size=8, seed=4)))
    assert not np.array_equal(other[0][0], batches[0][0][0])


def test_pair_dataset_same_pairs_within_one_recording_and_errors():
    fs = _random_set(frames=(30, 30), singers=("a", "b"))
    (x1, x2), y = next(iter(pair_dataset(fs, [0, 1], batch_size=4)))
    where = _locate(fs)
    for a, b, same in zip(x1.numpy(), x2.numpy(), y.numpy()):
        if same:
            assert where[a.tobytes()] != where[b.tobytes()]  # different windows
    with pytest.raises(ConfigError, match="even"):
        pair_dataset(fs, [0, 1], batch_size=5)
    with pytest.raises(ConfigError, match="2 singers"):
        pair_dataset(fs, [0, 0], batch_size=4)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3 singers x 2 songs x 8 s, plus a corrupt file and a missing one in the manifest."""
    root = tmp_path_factory.mktemp("corpus")
    man = read_manifest(generate_corpus(root, n_singers=3, n_songs=2, seconds=8.0))
    bad = root / "audio" / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    extra = [Recording(str(bad), "singer00", "song00", "corrupt"),
             Recording(str(root / "audio" / "gone.wav"), "singer01", "song01", "gone")]
    return Manifest(list(man) + extra, root)


def test_load_feature_set_keeps_good_files_and_reports_bad(corpus):
    fs, failed = load_feature_set(corpus, workers=2)
    assert fs.n_recordings == 6 and [r.recording for r in fs.recordings] == \
        [r.recording for r in corpus][:6]
    assert set(failed) == {corpus[6].path, corpus[7].path}
    assert "corrupt.wav" in failed[corpus[6].path] and "gone.wav" in failed[corpus[7].path]
    frames = 1 + 8 * 22050 // 512
    assert all(f.shape == (frames, 96) for f in fs.features)
    assert fs.n_windows == 6 * feats.n_windows(frames, FeatureConfig())
    assert 0 <= min(f.min() for f in fs.features) and max(f.max() for f in fs.features) <= 60


def test_load_feature_set_on_worker_processes_equals_threads(corpus, tmp_path):
    threads, bad_threads = load_feature_set(corpus, cache_dir=tmp_path / "t", workers=2)
    processes, bad_processes = load_feature_set(corpus, cache_dir=tmp_path / "p",
                                                workers=Workers(2, processes=True))
    assert bad_processes == bad_threads and processes.recordings == threads.recordings
    diff = max(float(np.abs(a - b).max()) for a, b in zip(processes.features, threads.features))
    assert diff < 1e-4  # dB; 0 measured (both run BLAS on one thread; 4e-6 with TF before)
    assert len(list((tmp_path / "p").glob("*.npy"))) == threads.n_recordings  # written


def test_cache_avoids_second_decode(corpus, tmp_path, monkeypatch):
    calls = []
    real = feats.extract_features

    def counting(path, cfg):
        calls.append(path)
        return real(path, cfg)

    monkeypatch.setattr(pipeline.feats, "extract_features", counting)
    good = corpus.subset(range(3))
    first, _ = load_feature_set(good, cache_dir=tmp_path / "cache", workers=1)
    assert len(calls) == 3 and len(list((tmp_path / "cache").glob("*.npy"))) == 3
    assert not list((tmp_path / "cache").glob("*.tmp"))
    second, failed = load_feature_set(good, cache_dir=tmp_path / "cache", workers=2)
    assert len(calls) == 3 and not failed  # no decoding the second time
    assert all(np.array_equal(a, b) for a, b in zip(first.features, second.features))
    # a changed file, a changed config, or an unreadable entry are recomputed
    os.utime(good[0].path, ns=(1, 1))
    load_feature_set(good, cache_dir=tmp_path / "cache", workers=1)
    assert calls[3:] == [good[0].path]
    load_feature_set(good.subset([1]), FeatureConfig(frontend="cqt"),
                     cache_dir=tmp_path / "cache", workers=1)
    assert calls[4:] == [good[1].path]
    entry = pipeline._cache_file(tmp_path / "cache", good[2].path, FeatureConfig())
    entry.write_bytes(b"not numpy")
    third, _ = load_feature_set(good, cache_dir=tmp_path / "cache", workers=1)
    assert calls[5:] == [good[2].path]
    assert np.array_equal(third.features[2], first.features[2])


def test_batch_sources_are_addressed_by_number_and_match_their_tf_data_view():
    """Batch i is a function of (seed, i): the numpy source, a fresh source and the tf.data
    view started at batch i all give the same batch (what a resumed run relies on)."""
    from singer_zoo.data.batches import PairBatches, WindowBatches
    from singer_zoo.data.tfdata import source_dataset

    fs = _random_set(frames=(40, 30, 24, 30, 20), singers=("a", "a", "b", "c", "c"))
    labels = [0, 0, 1, 2, 2]
    for make in (lambda: WindowBatches(fs, labels, 4, seed=5, repeat=True),
                 lambda: PairBatches(fs, labels, 4, seed=5)):
        src = make()
        stream = list(src.batches(0, 12))  # 12 window batches: more than one pass
        (x, y) = next(iter(source_dataset(make(), start=7)))
        (x_np, y_np) = make()[7]
        assert np.array_equal(y.numpy(), y_np) and np.array_equal(stream[7][1], y_np)
        for a, b in zip(x if isinstance(x, tuple) else (x,),
                        x_np if isinstance(x_np, tuple) else (x_np,)):
            assert np.array_equal(a.numpy(), b)
    src = WindowBatches(fs, labels, 4, seed=5, repeat=True)
    assert fs.n_windows == 20  # passes: batches 0-4, 5-9, ... each window once per pass
    for first in (0, 5):
        rows = np.concatenate([src.rows(i)[0] for i in range(first, first + 5)])
        assert sorted(rows) == sorted(fs.window_rows)
    assert not np.array_equal(src.rows(0)[0], src.rows(5)[0])  # each pass reshuffled
