"""Chopping features into 256-frame windows with a 51-frame hop: numpy and Keras layer."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from singer_zoo.config import FeatureConfig
from singer_zoo.errors import ConfigError
from singer_zoo.features import FrameWindows, chop, n_windows

CFG = FeatureConfig()


def feats(frames, bins=96, seed=0):
    return np.random.default_rng(seed).uniform(0, 60, (frames, bins)).astype(np.float32)


@pytest.mark.parametrize("frames, expected", [(1, 1), (100, 1), (256, 1), (306, 1), (307, 2),
                                              (256 + 51 * 10, 11), (256 + 51 * 10 + 50, 11)])
def test_window_count(frames, expected):
    assert n_windows(frames, CFG) == expected
    assert chop(feats(frames), CFG).shape == (expected, 256, 96)


def test_windows_are_the_right_slices_and_tail_is_dropped():
    x = feats(256 + 51 * 3 + 20)
    w = chop(x, CFG)
    assert w.shape == (4, 256, 96) and w.flags.c_contiguous
    for i in range(4):
        np.testing.assert_array_equal(w[i], x[i * 51:i * 51 + 256])
    assert w[-1, -1].tolist() == x[51 * 3 + 255].tolist()  # last 20 frames dropped
    assert w.flags.writeable and not np.shares_memory(w, x)  # a copy, not a strided view
    # any memory layout of the input (column-major, a strided slice) gives the same windows
    np.testing.assert_array_equal(chop(np.asfortranarray(x), CFG), w)
    np.testing.assert_array_equal(chop(np.repeat(x, 2, axis=1)[:, ::2], CFG), w)


def test_short_recording_is_tiled_to_one_window():
    x = feats(100)
    w = chop(x, CFG)
    assert w.shape == (1, 256, 96)
    np.testing.assert_array_equal(w[0], np.concatenate([x, x, x[:56]]))  # no silence
    np.testing.assert_array_equal(chop(x[:1], CFG)[0], np.repeat(x[:1], 256, axis=0))


def test_custom_window_and_hop():
    cfg = dataclasses.replace(CFG, window_frames=10, window_hop_frames=5)
    w = chop(np.arange(23 * 2, dtype=np.float32).reshape(23, 2), cfg)
    assert w.shape == (3, 10, 2)
    assert w[:, 0, 0].tolist() == [0, 10, 20]


def test_chop_rejects_wrong_rank():
    with pytest.raises(ConfigError, match=r"\(frames, bins\)"):
        chop(np.zeros(10), CFG)


@pytest.mark.parametrize("frames", [1, 50, 255, 256, 300, 400, 1000])
def test_layer_equals_chop(frames):
    layer = FrameWindows.from_features(CFG)
    x = np.stack([feats(frames, seed=1), feats(frames, seed=2)])
    out = layer(x).numpy()
    assert out.shape == (2, n_windows(frames, CFG), 256, 96)
    assert layer.compute_output_shape((2, frames, 96)) == out.shape
    for b in range(2):
        np.testing.assert_array_equal(out[b], chop(x[b], CFG))


def test_layer_with_unknown_length_in_graph():
    layer = FrameWindows(256, 51)
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, 96], tf.float32)])
    for frames in (120, 700):
        x = feats(frames)[None]
        np.testing.assert_array_equal(fn(x).numpy()[0], chop(x[0], CFG))


def test_layer_config_round_trip():
    layer = FrameWindows(128, 32, name="w")
    clone = FrameWindows.from_config(layer.get_config())
    assert (clone.window_frames, clone.hop_frames, clone.name) == (128, 32, "w")
