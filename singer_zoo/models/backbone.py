"""The shared backbone (paper Figure 1): feature windows -> last hidden dense layer.

    (batch, frames, bins)
      -> reshape (batch, frames, bins, 1)
      -> stem conv + stages of blocks, max pooling after each  (blocks.conv_stack)
      -> (batch, frames / p, channels x bins / p)               (pooling.to_sequence)
      -> global time aggregation                                (pooling.aggregate)
      -> dense_layers x [Dense(dense_units, relu), Dropout]

`SingerBackbone` is a functional Keras model subclassed the keras-hub way: built in
`__init__` from explicit arguments (the `ArchConfig` fields plus the input size), with a
`get_config` that returns exactly those arguments, so a saved model is rebuilt from them and
its layers keep the stable names of docs/models.md. The task heads (softmax classifier,
linear embedding) are added in `tasks.py`, so the same backbone serves both tasks and can be
reused for transfer.
"""
from __future__ import annotations

import contextlib
import dataclasses

import keras

from singer_zoo.config import ArchConfig
from singer_zoo.errors import ConfigError
from singer_zoo.models.blocks import conv_stack, tdnn_stack
from singer_zoo.models.pooling import aggregate, to_sequence

_ARCH = ArchConfig()  # the defaults of SingerBackbone's arguments
BACKBONE_FIELDS = tuple(f.name for f in dataclasses.fields(ArchConfig)
                        if f.name not in ("embedding_dim", "unit_embedding"))  # the task's


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


@contextlib.contextmanager
def _dtype_policy(dtype):
    """Layers created inside take the policy `dtype` (None: the global one), so a model
    saved under mixed precision is rebuilt with the compute dtype it was saved with."""
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package="singer_zoo")
class SingerBackbone(keras.Model):
    """Feature windows (batch, n_frames, n_bins) -> (batch, units) of the last hidden layer.

    Args:
        n_bins: feature bins per frame (the front end's `n_bins`).
        n_frames: frames per input window; None accepts any length of at least
            `pooling_factor` frames (aggregating rows only: "none" flattens the whole map).
        block, stem_filters, stages, cardinality, bottleneck_ratio, stem_kernel,
        stem_stride, kernel, aggregation, dense_units, dense_layers, dropout, l2,
        bn_momentum: the architecture, as the `ArchConfig` fields of the same names (and
            validated by it: a bad value is a `ConfigError` naming the field).
        dtype: the layers' dtype policy (default: the global policy).

    `units` is `dense_units`, or the aggregated width when `dense_layers` is 0.

    Example:
        >>> bb = SingerBackbone(n_bins=96, n_frames=None, stem_filters=16,
        ...                     stages=[[32], [64]], dense_units=256, dense_layers=2)
        >>> bb.output_shape
        (None, 256)
        >>> SingerBackbone.from_config(bb.get_config()).count_params() == bb.count_params()
        True
    """

    def __init__(self, n_bins: int = 96, n_frames: int | None = None,
                 block: str = _ARCH.block, stem_filters: int = _ARCH.stem_filters,
                 stages=_ARCH.stages, cardinality: int = _ARCH.cardinality,
                 bottleneck_ratio: float = _ARCH.bottleneck_ratio,
                 stem_kernel: int = _ARCH.stem_kernel, stem_stride: int = _ARCH.stem_stride,
                 kernel: int = _ARCH.kernel, aggregation: str = _ARCH.aggregation,
                 dense_units: int = _ARCH.dense_units, dense_layers: int = _ARCH.dense_layers,
                 dropout: float = _ARCH.dropout, l2: float = _ARCH.l2,
                 bn_momentum: float = _ARCH.bn_momentum, dtype=None, name: str = "backbone",
                 **kwargs):
        arch = ArchConfig(block=block, stem_filters=stem_filters, stages=stages,
                          cardinality=cardinality, bottleneck_ratio=bottleneck_ratio,
                          stem_kernel=stem_kernel, stem_stride=stem_stride, kernel=kernel,
                          aggregation=aggregation, dense_units=dense_units,
                          dense_layers=dense_layers, dropout=dropout, l2=l2,
                          bn_momentum=bn_momentum)
        check_input_size(arch, n_bins, n_frames)
        with _dtype_policy(dtype):
            inputs = keras.Input((n_frames, n_bins), name="features")
            if arch.block == "tdnn":
                x = tdnn_stack(inputs, arch)  # (b, T, D): per-frame layers, no pooling
            else:
                x = keras.layers.Reshape((-1, n_bins, 1), name="add_channel")(inputs)
                x = conv_stack(x, arch)  # (b, T, F, 1) -> (b, T / p, F / p, C)
                x = to_sequence(x)  # (b, T / p, C * F / p)
            x = aggregate(x, arch.aggregation, l2=arch.l2)  # (b, D); (b, T / p * D) for "none"
            reg = keras.regularizers.L2(arch.l2) if arch.l2 else None
            for i in range(1, arch.dense_layers + 1):
                x = keras.layers.Dense(arch.dense_units, activation="relu",
                                       kernel_regularizer=reg, name=f"dense{i}")(x)
                x = keras.layers.Dropout(arch.dropout, name=f"dense{i}_dropout")(x)
        super().__init__(inputs, x, name=name, **kwargs)  # (b, units)
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self.arch, self.n_bins, self.n_frames = arch, n_bins, n_frames

    @classmethod
    def from_arch(cls, arch: ArchConfig, n_bins: int = 96, n_frames: int | None = None,
                  **kwargs) -> SingerBackbone:
        """The backbone of an `ArchConfig` (its `embedding_dim` is the task's, not used)."""
        return cls(n_bins=n_bins, n_frames=n_frames,
                   **{f: getattr(arch, f) for f in BACKBONE_FIELDS}, **kwargs)

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                "n_bins": self.n_bins, "n_frames": self.n_frames,
                **{f: getattr(self.arch, f) for f in BACKBONE_FIELDS},
                "stages": [list(s) for s in self.arch.stages]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def build_backbone(arch: ArchConfig, n_bins: int = 96, n_frames: int | None = 256,
                   name: str = "backbone") -> SingerBackbone:
    """`SingerBackbone.from_arch(arch, n_bins, n_frames, name=name)`."""
    return SingerBackbone.from_arch(arch, n_bins, n_frames, name=name)
