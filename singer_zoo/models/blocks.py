"""Convolutional building blocks of the paper (section 2.1, Figure 2).

Every convolution is Conv2D -> ReLU -> BatchNormalization: the paper applies batch
normalisation *after* each non-linearity. The BN momentum is `ArchConfig.bn_momentum` (0.9:
Keras's default 0.99 leaves the inference-mode statistics near their initial values after a
short run; docs/training.md, "Batch normalisation"). Padding is "same", so only the max-pooling
layers between stages change the (time, freq) size. Kernel weights carry an L2 penalty
(1e-6 in the paper, section 3.3).

Blocks are functions from a Keras tensor to a Keras tensor (functional API); every layer
gets a stable explicit name derived from `name`, e.g. "stage1_block2_conv1".
"""
from __future__ import annotations

import keras

from singer_zoo.config import bottleneck_width
from singer_zoo.errors import ConfigError


@keras.saving.register_keras_serializable(package="singer_zoo")
class GroupedConv2D(keras.layers.Layer):
    """Grouped convolution (ResNeXt, Figure 2c) as `groups` Conv2D layers on equal channel
    slices of the input, concatenated: the "series of sliced operations over the channel
    axis" of section 2.1. Same function and parameter count as Conv2D(groups=g), but
    TensorFlow's grouped-conv kernel is pathologically slow on CPU: one training step of a
    5x5 64->64 g=4 conv on a (32, 128, 48, 64) batch took 1.4 s split this way and over 300 s
    with Conv2D(groups=4) (measured here). SPLIT/CONV_2D/CONCATENATION are TFLite builtins.
    """

    def __init__(self, filters: int, kernel_size: int, groups: int, activation=None,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if filters % groups:
            raise ConfigError(f"{self.name}: {filters} filters not divisible by {groups} groups")
        self.filters, self.kernel_size, self.groups = filters, kernel_size, groups
        self.activation = keras.activations.get(activation)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.convs = [keras.layers.Conv2D(filters // groups, kernel_size, padding="same",
                                          activation=activation,
                                          kernel_regularizer=self.kernel_regularizer,
                                          name=f"{self.name}_g{i}") for i in range(groups)]

    def build(self, input_shape):
        if input_shape[-1] % self.groups:
            raise ConfigError(f"{self.name}: {input_shape[-1]} input channels not divisible "
                              f"by {self.groups} groups")
        part = (*input_shape[:-1], input_shape[-1] // self.groups)
        for conv in self.convs:
            conv.build(part)
        self.built = True

    def call(self, x):
        parts = keras.ops.split(x, self.groups, axis=-1)  # groups x (..., c / groups)
        return keras.ops.concatenate([c(p) for c, p in zip(self.convs, parts)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "groups": self.groups,
                "activation": keras.activations.serialize(self.activation),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


def conv_bn(x, filters: int, kernel: int, name: str, l2: float = 1e-6, groups: int = 1,
            activation: str | None = "relu", bn_momentum: float = 0.9, strides: int = 1,
            separable: bool = False):
    """One convolution layer: Conv2D(`filters`, `kernel`, same padding) -> ReLU -> BN.

    `groups` > 1 makes a grouped convolution (ResNeXt, `GroupedConv2D`). `activation=None`
    gives the linear 1x1 projection used on residual shortcuts. `bn_momentum` is the BN
    moving-statistics momentum. `strides` > 1 strides the convolution (the mobile rows'
    stem); `separable` makes it depthwise-separable (`SeparableConv2D`: a `kernel` x `kernel`
    depthwise conv, then a 1x1 conv to `filters`; TFLite DEPTHWISE_CONV_2D + CONV_2D).
    """
    reg = keras.regularizers.L2(l2) if l2 else None
    if groups > 1:
        x = GroupedConv2D(filters, kernel, groups, activation=activation,
                          kernel_regularizer=reg, name=f"{name}_conv")(x)
    elif separable:
        x = keras.layers.SeparableConv2D(filters, kernel, strides, padding="same",
                                         activation=activation, depthwise_regularizer=reg,
                                         pointwise_regularizer=reg, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides, padding="same", activation=activation,
                                kernel_regularizer=reg, name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)


def vanilla_block(x, width: int, name: str, kernel: int = 5, l2: float = 1e-6,
                  bn_momentum: float = 0.9):
    """Figure 2a: two `kernel` x `kernel` convolution layers of `width` channels."""
    x = conv_bn(x, width, kernel, f"{name}_conv1", l2, bn_momentum=bn_momentum)
    return conv_bn(x, width, kernel, f"{name}_conv2", l2, bn_momentum=bn_momentum)


def separable_block(x, width: int, name: str, kernel: int = 5, l2: float = 1e-6,
                    bn_momentum: float = 0.9):
    """Figure 2a with depthwise-separable convolutions (block "separable", mobile rows):
    two `kernel` x `kernel` separable layers of `width` channels. At 32 -> 64 channels a
    5x5 layer costs 1/18 of the multiply-adds of the plain convolution."""
    x = conv_bn(x, width, kernel, f"{name}_conv1", l2, bn_momentum=bn_momentum, separable=True)
    return conv_bn(x, width, kernel, f"{name}_conv2", l2, bn_momentum=bn_momentum,
                   separable=True)


def resnext_block(x, width: int, name: str, cardinality: int = 4,
                  bottleneck_ratio: float = 0.5, kernel: int = 5, l2: float = 1e-6,
                  bn_momentum: float = 0.9):
    """Figure 2b/c: ResNeXt bottleneck block y = shortcut(x) + F(x).

    F is 1x1 conv (in -> w), `kernel` x `kernel` grouped conv (w -> w, `cardinality`
    groups) and 1x1 conv (w -> width), with w = width * bottleneck_ratio. The shortcut is
    the identity when the channel count does not change, otherwise a linear 1x1 projection
    followed by BN. Cardinality 1 is the ResNet bottleneck block.
    """
    in_channels = x.shape[-1]
    w = bottleneck_width(width, bottleneck_ratio)  # GroupedConv2D checks cardinality | w
    m = bn_momentum
    residual = conv_bn(x, w, 1, f"{name}_conv1", l2, bn_momentum=m)
    residual = conv_bn(residual, w, kernel, f"{name}_conv2", l2, groups=cardinality,
                       bn_momentum=m)
    residual = conv_bn(residual, width, 1, f"{name}_conv3", l2, bn_momentum=m)
    shortcut = x if in_channels == width else \
        conv_bn(x, width, 1, f"{name}_proj", l2, activation=None, bn_momentum=m)
    return keras.layers.Add(name=f"{name}_add")([shortcut, residual])


def tdnn_stack(x, arch, name: str = ""):
    """Frame-level layers of block "tdnn" (x-vector style, Snyder et al. 2018; beyond the
    paper): per-frame layers over the bins instead of 2-D convolutions over (time, freq).

    (batch, time, bins) in dB [0, 60] -> rescaled to [-0.5, 0.5] -> `frame`: Dense(
    `stem_filters`), a learnt cepstrum (MFCCs are a fixed linear map of the same log-Mel
    frames) -> BN -> one dilated Conv1D per stage width (time-delay layers,
    `ArchConfig.tdnn_layers`; ReLU -> BN as in every block of the zoo) ->
    `frame_out`: Dense(2 x last width), linear. Output (batch, time, 2 x last width): no
    pooling, so the time axis is kept whole for the statistics.
    """
    prefix = f"{name}_" if name else ""
    reg = keras.regularizers.L2(arch.l2) if arch.l2 else None
    m = arch.bn_momentum
    x = keras.layers.Rescaling(1 / 60.0, offset=-0.5, name=f"{prefix}rescale")(x)
    x = keras.layers.Dense(arch.stem_filters, kernel_regularizer=reg,
                           name=f"{prefix}frame")(x)  # (b, T, stem_filters)
    x = keras.layers.BatchNormalization(momentum=m, name=f"{prefix}frame_bn")(x)
    for i, (width, kernel, dilation) in enumerate(arch.tdnn_layers, start=1):
        x = keras.layers.Conv1D(width, kernel, dilation_rate=dilation, padding="same",
                                activation="relu", kernel_regularizer=reg,
                                name=f"{prefix}tdnn{i}_conv")(x)  # (b, T, width)
        x = keras.layers.BatchNormalization(momentum=m, name=f"{prefix}tdnn{i}_bn")(x)
    return keras.layers.Dense(2 * x.shape[-1], kernel_regularizer=reg,
                              name=f"{prefix}frame_out")(x)  # (b, T, 2 x last width)


def conv_stack(x, arch, name: str = ""):
    """The whole convolutional part of `arch` (an ArchConfig).

    Stem conv layer (`stem_kernel`, `stem_filters`) then MaxPool(2, 2), or with
    `stem_stride` s > 1 the stem conv strided by s and no pooling; each stage is a run of
    blocks (one per width) followed by MaxPool(2, 2). Input (batch, time, freq, 1),
    output (batch, time / p, freq / p, last width) with p = arch.pooling_factor.
    """
    prefix = f"{name}_" if name else ""
    if arch.stem_stride > 1:  # (b, T / s, F / s, stem_filters)
        x = conv_bn(x, arch.stem_filters, arch.stem_kernel, f"{prefix}stem", arch.l2,
                    bn_momentum=arch.bn_momentum, strides=arch.stem_stride)
    else:  # (b, T / 2, F / 2, stem_filters)
        x = conv_bn(x, arch.stem_filters, arch.stem_kernel, f"{prefix}stem", arch.l2,
                    bn_momentum=arch.bn_momentum)
        x = keras.layers.MaxPooling2D((2, 2), name=f"{prefix}stem_pool")(x)
    for s, widths in enumerate(arch.stages, start=1):
        for b, width in enumerate(widths, start=1):
            block_name = f"{prefix}stage{s}_block{b}"
            if arch.block == "vanilla":
                x = vanilla_block(x, width, block_name, arch.kernel, arch.l2,
                                  arch.bn_momentum)
            elif arch.block == "separable":
                x = separable_block(x, width, block_name, arch.kernel, arch.l2,
                                    arch.bn_momentum)
            else:
                x = resnext_block(x, width, block_name, arch.cardinality,
                                  arch.bottleneck_ratio, arch.kernel, arch.l2,
                                  arch.bn_momentum)
        x = keras.layers.MaxPooling2D((2, 2), name=f"{prefix}stage{s}_pool")(x)
    return x  # (batch, time / p, freq / p, channels)
