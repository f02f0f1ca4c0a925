"""The shared backbone (paper Figure 1): feature windows -> last hidden dense layer.

    (batch, frames, bins)
      -> reshape (batch, frames, bins, 1)
      -> stem conv + stages of blocks, max pooling after each  (blocks.conv_stack)
      -> (batch, frames / p, channels x bins / p)               (pooling.to_sequence)
      -> global time aggregation                                (pooling.aggregate)
      -> dense_layers x [Dense(dense_units, relu), Dropout]

The task heads (softmax classifier, linear embedding) are added in `tasks.py`, so the same
backbone serves both tasks and can be reused for transfer.
"""
from __future__ import annotations

import keras

from singer_zoo.config import ArchConfig
from singer_zoo.errors import ConfigError
from singer_zoo.models.blocks import conv_stack
from singer_zoo.models.pooling import aggregate, to_sequence


def check_input_size(arch: ArchConfig, n_bins: int, n_frames: int | None) -> None:
    """Raise ConfigError unless the input survives the 1 + len(stages) poolings."""
    p = arch.pooling_factor
    if n_bins < p:
        raise ConfigError(f"n_bins={n_bins} is smaller than the pooling factor {p}")
    if n_frames is None:
        if arch.aggregation == "none":
            raise ConfigError("aggregation 'none' flattens the whole map: it needs a fixed "
                              "n_frames (e.g. features.window_frames)")
    elif n_frames < p:
        raise ConfigError(f"n_frames={n_frames} is smaller than the pooling factor {p}")


def build_backbone(arch: ArchConfig, n_bins: int = 96, n_frames: int | None = 256,
                   name: str = "backbone") -> keras.Model:
    """Keras model (batch, n_frames, n_bins) -> (batch, units) of the last hidden layer.

    `n_frames=None` accepts any length >= arch.pooling_factor (aggregating rows only);
    `units` is arch.dense_units, or the aggregated width when arch.dense_layers is 0.
    """
    check_input_size(arch, n_bins, n_frames)
    inputs = keras.Input((n_frames, n_bins), name="features")
    x = keras.layers.Reshape((-1, n_bins, 1), name="add_channel")(inputs)  # (b, T, F, 1)
    x = conv_stack(x, arch)  # (b, T / p, F / p, C)
    x = to_sequence(x)  # (b, T / p, C * F / p)
    x = aggregate(x, arch.aggregation, l2=arch.l2)  # (b, D) or (b, T / p * D) for "none"
    reg = keras.regularizers.L2(arch.l2) if arch.l2 else None
    for i in range(1, arch.dense_layers + 1):
        x = keras.layers.Dense(arch.dense_units, activation="relu", kernel_regularizer=reg,
                               name=f"dense{i}")(x)
        x = keras.layers.Dropout(arch.dropout, name=f"dense{i}_dropout")(x)
    return keras.Model(inputs, x, name=name)  # (b, units)
