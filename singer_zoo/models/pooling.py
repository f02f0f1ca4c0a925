"""Global time-wise aggregation (paper section 2.2).

The convolutional feature map (batch, time, freq, channels) is first reshaped to a sequence
(batch, time, D) with D = channels x freq (channels-major, as in the Figure 1 caption), then
reduced over time by one of:

- "none": no aggregation, the whole sequence is flattened (needs a fixed input length);
- "max" / "average": global max / mean over time;
- "attention": feed-forward attention (Raffel & Ellis, 2015), `FeedForwardAttention`;
- "statistics": mean and standard deviation over time, concatenated (batch, 2 D)
  (x-vector statistics pooling, Snyder et al. 2018; beyond the paper), `StatisticsPooling`.

All ops are TFLite builtins (transpose, reshape, batch matmul, softmax, tanh, sum, mean,
sqrt, concatenation).
"""
from __future__ import annotations

import keras
from keras import ops

from singer_zoo.config import AGGREGATIONS
from singer_zoo.errors import ConfigError, UnknownNameError


@keras.saving.register_keras_serializable(package="singer_zoo")
class FeedForwardAttention(keras.layers.Layer):
    """Feed-forward attention over time: sigma = softmax_t(tanh(X w + b)), out = sum_t sigma_t X_t.

    Input X: (batch, time, D); output (batch, D). `w` in R^D and the scalar `b` are learnt
    (D + 1 parameters); `w` acts as a "frequency template" per channel (paper section 4).
    """

    def __init__(self, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ConfigError(f"{self.name}: the feature dimension must be known")
        self.w = self.add_weight(shape=(dim, 1), initializer="glorot_uniform",
                                 regularizer=self.kernel_regularizer, name="w")
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")

    def call(self, x):
        # Rank-3 by rank-3 (broadcast over the batch) so that the TF backend lowers it to one
        # BatchMatMulV2; a rank-2 kernel would make keras.ops.matmul a tensordot (reshapes
        # + gathers that TFLite handles worse). Any backend runs it (no tf.* in a layer).
        w = ops.expand_dims(self.w, 0)  # (1, D, 1)
        scores = ops.tanh(ops.matmul(x, w) + self.b)  # (batch, time, 1)
        sigma = ops.softmax(scores, axis=1)  # (batch, time, 1)
        return ops.sum(sigma * x, axis=1)  # (batch, D)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


@keras.saving.register_keras_serializable(package="singer_zoo")
class StatisticsPooling(keras.layers.Layer):
    """(batch, time, D) -> (batch, 2 D): [mean_t X, sqrt(mean_t (X - mean)^2 + eps)].

    The spread over time is what a mean alone (or attention's weighted mean) loses: how
    much a singer's timbre varies along a performance, the half of MFCC mean+std statistics
    that a single template cannot express. No weights.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        x = ops.cast(x, "float32")  # variance in float32 even under mixed precision
        mean = ops.mean(x, axis=1)  # (batch, D)
        centred = x - ops.expand_dims(mean, 1)  # (batch, time, D)
        std = ops.sqrt(ops.mean(ops.square(centred), axis=1) + self.epsilon)  # (batch, D)
        return ops.concatenate([mean, std], axis=-1)  # (batch, 2 D)

    def compute_output_shape(self, input_shape):
        dim = input_shape[-1]
        return (input_shape[0], None if dim is None else 2 * dim)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def to_sequence(x, name: str = "to_sequence"):
    """(batch, time, freq, channels) -> (batch, time, channels x freq), channels-major."""
    freq, channels = x.shape[2], x.shape[3]
    x = keras.layers.Permute((1, 3, 2), name=f"{name}_transpose")(x)  # (batch, time, ch, freq)
    return keras.layers.Reshape((-1, channels * freq), name=f"{name}_reshape")(x)


def aggregate(x, kind: str, name: str = "aggregation", l2: float = 1e-6):
    """Reduce a sequence (batch, time, D) over time: (batch, D), (batch, 2 D) for "statistics";
    "none" flattens to (batch, time x D)."""
    if kind == "none":
        if x.shape[1] is None:
            raise ConfigError(f"{name}: aggregation 'none' needs a fixed number of frames")
        return keras.layers.Flatten(name=f"{name}_flatten")(x)
    if kind == "max":
        return keras.layers.GlobalMaxPooling1D(name=f"{name}_max")(x)
    if kind == "average":
        return keras.layers.GlobalAveragePooling1D(name=f"{name}_average")(x)
    if kind == "attention":
        reg = keras.regularizers.L2(l2) if l2 else None
        return FeedForwardAttention(kernel_regularizer=reg, name=f"{name}_attention")(x)
    if kind == "statistics":
        return StatisticsPooling(name=f"{name}_statistics")(x)  # (batch, 2 D)
    raise UnknownNameError("aggregation", kind, AGGREGATIONS)
