"""Precise batch normalisation: re-estimate every BatchNormalization layer's moving mean and
variance from training batches once training is done (Wu & Johnson, "Rethinking 'Batch' in
BatchNorm", 2021, section 3).

In inference mode a BN layer normalises with its moving statistics, an exponential average
of the batch statistics seen during training. After a short run (the demo's few dozen
updates) that average still weighs its initial values (mean 0, variance 1) heavily, and it
always mixes statistics of older weights with those of the final ones. `recompute_bn_statistics`
replaces them with the plain average, over `max_batches` batches, of the batch mean and
variance that each layer sees with the FINAL weights: at the k-th batch every layer's
momentum is set to 1 - 1/k and the model runs once in training mode, so the moving value
becomes (1 - 1/k) old + 1/k new, the running mean of the k batch values. The layers'
momenta are restored afterwards; no other weight changes (training-mode forward passes do
not touch trainable weights).

Backend-neutral (Keras layers and numpy only): batches are a plain Python iterable of
numpy arrays (or lists of arrays for multi-input models).
"""
from __future__ import annotations

import keras
import numpy as np

from singer_zoo.errors import ConfigError

DEFAULT_BATCHES = 20


def batch_norm_layers(model: keras.Model) -> list:
    """Every BatchNormalization layer of `model`, nested models included (once each)."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def recompute_bn_statistics(model: keras.Model, batches, max_batches: int = DEFAULT_BATCHES
                            ) -> int:
    """Set the moving mean/variance of every BN layer of `model` to the average batch
    statistics over the first `max_batches` of `batches` (each an input of `model`).

    Returns the number of batches used (0 when `model` has no BN layer: nothing is run).
    Raises ConfigError when `batches` is empty, since the statistics would be left as they
    were while the caller believes them re-estimated.
    """
    if max_batches < 1:
        raise ConfigError(f"recompute_bn_statistics: max_batches must be >= 1, got {max_batches}")
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    k = 0
    try:
        for x in batches:
            if k == max_batches:
                break
            k += 1
            for layer in layers:
                layer.momentum = 1.0 - 1.0 / k  # k = 1: the first batch replaces the old value
            x = [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else np.asarray(x)
            model(x, training=True)
    finally:
        for layer, m in zip(layers, momenta):
            layer.momentum = m
    if k == 0:
        raise ConfigError("recompute_bn_statistics: no batches to estimate statistics from")
    return k
