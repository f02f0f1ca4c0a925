"""Blocks, global aggregation and the backbone (singer_zoo.models.blocks/pooling/backbone)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from singer_zoo.config import ArchConfig
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.models import FeedForwardAttention, build_backbone
from singer_zoo.models.blocks import GroupedConv2D, conv_bn, resnext_block, vanilla_block
from singer_zoo.models.pooling import StatisticsPooling, aggregate, to_sequence

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _clear():
    yield
    keras.backend.clear_session()


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_conv_bn_is_conv_relu_then_batchnorm():
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, conv_bn(inp, 4, 3, "c", l2=1e-6))
    conv, bn = model.get_layer("c_conv"), model.get_layer("c_bn")
    assert conv.get_config()["activation"] == "relu" and conv.padding == "same"
    assert isinstance(bn, keras.layers.BatchNormalization)
    assert conv.kernel_regularizer.get_config()["l2"] == pytest.approx(1e-6)
    x = RNG.normal(size=(2, 8, 8, 3)).astype("float32")
    # In inference BN is (v - 0) / sqrt(1 + eps): the pre-BN values must be non-negative.
    pre = keras.Model(inp, conv.output)(x)
    assert np.min(np.asarray(pre)) >= 0
    np.testing.assert_allclose(model(x), np.asarray(pre) / np.sqrt(1 + bn.epsilon), rtol=1e-5)


def test_vanilla_block_two_convs_and_params():
    inp = keras.Input((16, 12, 3))
    model = keras.Model(inp, vanilla_block(inp, 8, "v", kernel=5))
    assert model.output_shape == (None, 16, 12, 8)
    assert [layer.name for layer in model.layers[1:]] == ["v_conv1_conv", "v_conv1_bn",
                                                          "v_conv2_conv", "v_conv2_bn"]
    assert model.count_params() == (25 * 3 * 8 + 8 + 32) + (25 * 8 * 8 + 8 + 32)


def test_resnext_identity_shortcut_adds_input_to_residual():
    inp = keras.Input((8, 8, 16))
    out = resnext_block(inp, 16, "r", cardinality=4, bottleneck_ratio=0.5, kernel=5)
    model = keras.Model(inp, out)
    names = [layer.name for layer in model.layers]
    assert "r_proj_conv" not in names
    grouped = model.get_layer("r_conv2_conv")  # 4 groups of 2 input -> 2 output channels
    assert grouped.groups == 4
    assert [tuple(c.kernel.shape) for c in grouped.convs] == [(5, 5, 2, 2)] * 4
    x = RNG.normal(size=(2, 8, 8, 16)).astype("float32")
    residual = keras.Model(inp, model.get_layer("r_conv3_bn").output)(x)
    np.testing.assert_allclose(model(x), x + np.asarray(residual), rtol=1e-5, atol=1e-6)


def test_resnext_projection_shortcut_when_width_changes():
    inp = keras.Input((8, 8, 4))
    model = keras.Model(inp, resnext_block(inp, 16, "r", cardinality=4))
    proj = model.get_layer("r_proj_conv")
    assert proj.kernel_size == (1, 1) and proj.get_config()["activation"] == "linear"
    assert model.output_shape == (None, 8, 8, 16)
    x = RNG.normal(size=(1, 8, 8, 4)).astype("float32")
    shortcut = keras.Model(inp, model.get_layer("r_proj_bn").output)(x)
    residual = keras.Model(inp, model.get_layer("r_conv3_bn").output)(x)
    np.testing.assert_allclose(model(x), np.asarray(shortcut) + residual, rtol=1e-5, atol=1e-6)


def test_resnext_rejects_width_not_divisible_by_cardinality():
    # the bottleneck width 6 is checked once, by the grouped convolution (issue 19)
    with pytest.raises(ConfigError, match="6 filters not divisible by 4 groups"):
        resnext_block(keras.Input((8, 8, 4)), 12, "r", cardinality=4)


def test_attention_matches_formula_and_is_a_weighted_average():
    x = RNG.normal(size=(3, 7, 5)).astype("float32")
    layer = FeedForwardAttention(name="att")
    layer.build(x.shape)
    w = RNG.normal(size=(5, 1)).astype("float32")
    layer.set_weights([w, np.float32(0.3)])
    scores = np.tanh(x @ w + 0.3)[..., 0]  # (batch, time)
    sigma = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    np.testing.assert_allclose(layer(x), (sigma[..., None] * x).sum(1), rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 5 + 1
    same = np.repeat(x[:, :1], 7, axis=1)  # identical frames: output is that frame
    np.testing.assert_allclose(layer(same), x[:, 0], rtol=1e-5, atol=1e-6)


def test_attention_config_round_trip_and_variable_length():
    layer = FeedForwardAttention(kernel_regularizer=keras.regularizers.L2(1e-6), name="att")
    clone = FeedForwardAttention.from_config(layer.get_config())
    assert clone.kernel_regularizer.get_config()["l2"] == pytest.approx(1e-6)
    inp = keras.Input((None, 6))
    model = keras.Model(inp, layer(inp))
    for t in (2, 9, 40):
        assert model(np.ones((2, t, 6), "float32")).shape == (2, 6)
    assert len(model.losses) == 1  # the L2 penalty on w


def test_attention_graph_uses_batch_matmul_not_tensordot():
    layer = FeedForwardAttention()
    fn = tf.function(layer).get_concrete_function(tf.TensorSpec((None, None, 8), tf.float32))
    ops = {op.type for op in fn.graph.get_operations()}
    assert "BatchMatMulV2" in ops or "BatchMatMulV3" in ops
    assert not any("Tensordot" in op.name for op in fn.graph.get_operations())


def test_to_sequence_is_channels_major():
    x = RNG.normal(size=(2, 3, 4, 5)).astype("float32")  # (batch, time, freq, channels)
    inp = keras.Input((None, 4, 5))
    out = np.asarray(keras.Model(inp, to_sequence(inp))(x))
    assert out.shape == (2, 3, 20)
    for c in range(5):
        for f in range(4):
            np.testing.assert_array_equal(out[:, :, c * 4 + f], x[:, :, f, c])


@pytest.mark.parametrize("kind,reduce", [("max", np.max), ("average", np.mean)])
def test_max_and_average_aggregation(kind, reduce):
    x = RNG.normal(size=(2, 6, 4)).astype("float32")
    inp = keras.Input((None, 4))
    np.testing.assert_allclose(keras.Model(inp, aggregate(inp, kind))(x), reduce(x, axis=1),
                               rtol=1e-6)


def test_statistics_pooling_is_mean_and_std_over_time_at_any_length():
    x = RNG.normal(2.0, 3.0, size=(3, 11, 4)).astype("float32")
    inp = keras.Input((None, 4))
    model = keras.Model(inp, aggregate(inp, "statistics"))
    expected = np.concatenate([x.mean(1), np.sqrt(x.var(1) + 1e-5)], axis=1)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)
    assert model(x[:, :3]).shape == (3, 8) and model.count_params() == 0
    clone = StatisticsPooling.from_config(StatisticsPooling(epsilon=1e-3).get_config())
    assert clone.epsilon == pytest.approx(1e-3)


def test_statistics_pooling_converts_to_builtin_tflite_ops():
    inp = keras.Input((None, 6), batch_size=1)
    model = keras.Model(inp, StatisticsPooling()(inp))
    fn = tf.function(model).get_concrete_function(tf.TensorSpec((1, None, 6), tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    assert converter.convert()  # raises on any op outside the builtin set


def test_aggregation_errors():
    with pytest.raises(ConfigError, match="fixed number of frames"):
        aggregate(keras.Input((None, 4)), "none")
    with pytest.raises(UnknownNameError, match="attention"):
        aggregate(keras.Input((5, 4)), "median")
    assert aggregate(keras.Input((5, 4)), "none").shape == (None, 20)


@pytest.mark.parametrize("block,stem,stages,n_conv", [
    ("vanilla", 64, [[128]], 3), ("vanilla", 16, [[32, 32, 32], [64, 64, 64]], 13),
    ("resnext", 64, [[128]], 4), ("resnext", 32, [[64, 64, 64], [128, 128, 128]], 19)])
def test_backbone_layer_counts_match_table1_caption(block, stem, stages, n_conv):
    """Table 1 caption: 3 / 13 conv layers (CNN) and 4 / 19 (ResNeXt), projections aside."""
    arch = ArchConfig(block=block, stem_filters=stem, stages=stages, aggregation="max",
                      dense_units=8, dense_layers=1)
    model = build_backbone(arch, 96, 64)
    convs = [layer for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, GroupedConv2D))]
    assert len([c for c in convs if not c.name.endswith("proj_conv")]) == n_conv
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == arch.pooling_factor.bit_length() - 1 == 1 + len(stages)
    feature_map = model.get_layer(f"stage{len(stages)}_pool").output
    assert tuple(feature_map.shape[1:]) == (64 // arch.pooling_factor,
                                            96 // arch.pooling_factor, stages[-1][-1])


def test_backbone_head_regularisation_and_names():
    arch = ArchConfig(block="resnext", stem_filters=8, stages=[[16]], aggregation="attention",
                      dense_units=12, dense_layers=2, dropout=0.25, l2=1e-5)
    model = build_backbone(arch, 32, None, name="bb")
    assert model.name == "bb" and model.input_shape == (None, None, 32)
    assert model.output_shape == (None, 12)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            assert layer.kernel_regularizer.get_config()["l2"] == pytest.approx(1e-5)
    assert model.get_layer("dense2_dropout").rate == 0.25
    assert model.get_layer("aggregation_attention").kernel_regularizer is not None
    out = model(np.zeros((1, 37, 32), "float32"))  # any length >= the pooling factor
    assert out.shape == (1, 12)


def test_backbone_rejects_too_small_inputs():
    arch = ArchConfig(stages=[[16]], stem_filters=8, aggregation="max")
    with pytest.raises(ConfigError, match="n_frames=3"):
        build_backbone(arch, 96, 3)
    with pytest.raises(ConfigError, match="n_bins=2"):
        build_backbone(arch, 2, 64)
    with pytest.raises(ConfigError, match="fixed"):
        build_backbone(ArchConfig(aggregation="none"), 96, None)
