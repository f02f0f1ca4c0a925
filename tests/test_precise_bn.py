"""Precise BN (`training.precise_bn`): the moving statistics become the exact average of the
batch statistics, nested models are covered, the layers' momenta are restored, and nothing
else changes."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from singer_zoo.errors import ConfigError
from singer_zoo.training.precise_bn import batch_norm_layers, recompute_bn_statistics


def _model():
    """Input -> [nested: Dense(3) -> BN(momentum 0.99)] -> BN(momentum 0.9)."""
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="bn_inner")(
        keras.layers.Dense(3, name="dense")(inner_in)), name="inner")
    inp = keras.Input((4,))
    out = keras.layers.BatchNormalization(momentum=0.9, name="bn_outer")(inner(inp))
    return keras.Model(inp, out), inner


def test_statistics_are_the_average_of_the_batch_statistics():
    model, inner = _model()
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (16, 4)).astype("float32") for _ in range(5)]
    kernel = [w.copy() for w in model.get_weights()]
    assert recompute_bn_statistics(model, iter(batches), max_batches=3) == 3
    h = [np.asarray(inner.get_layer("dense")(b)) for b in batches[:3]]  # BN inputs
    bn = inner.get_layer("bn_inner")
    np.testing.assert_allclose(bn.moving_mean, np.mean([x.mean(0) for x in h], 0), atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, np.mean([x.var(0) for x in h], 0),
                               rtol=1e-4)
    # the outer BN sees the inner BN's training-mode output: mean 0, variance ~1 per batch
    outer = model.get_layer("bn_outer")
    np.testing.assert_allclose(outer.moving_mean, 0.0, atol=1e-5)
    assert [layer.momentum for layer in batch_norm_layers(model)] == [0.99, 0.9]
    trainable = [w for w, v in zip(model.get_weights(), model.weights) if v.trainable]
    assert all(np.array_equal(a, b) for a, b in zip(
        trainable, [w for w, v in zip(kernel, model.weights) if v.trainable]))


def test_no_batches_is_an_error_and_no_bn_layer_runs_nothing():
    model, _ = _model()
    with pytest.raises(ConfigError, match="no batches"):
        recompute_bn_statistics(model, iter([]))
    with pytest.raises(ConfigError, match="max_batches must be >= 1"):
        recompute_bn_statistics(model, iter([]), max_batches=0)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert recompute_bn_statistics(plain, iter([])) == 0
