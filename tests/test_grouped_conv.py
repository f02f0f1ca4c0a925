"""GroupedConv2D: the ResNeXt grouped convolution as parallel convolutions on channel slices."""
import keras
import numpy as np
import pytest

from singer_zoo.errors import ConfigError
from singer_zoo.models.blocks import GroupedConv2D


def test_equals_keras_grouped_conv_with_the_same_weights():
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 8)).astype("float32")
    ours = GroupedConv2D(8, 3, groups=4, activation="relu", name="g")
    ref = keras.layers.Conv2D(8, 3, padding="same", groups=4, activation="relu")
    ours(x), ref(x)
    assert ours.count_params() == ref.count_params() == 3 * 3 * 2 * 8 + 8
    kernel, bias = ref.get_weights()  # kernel (3, 3, 2, 8): group g owns outputs 2g..2g+1
    for g, conv in enumerate(ours.convs):
        conv.set_weights([kernel[..., 2 * g:2 * g + 2], bias[2 * g:2 * g + 2]])
    np.testing.assert_allclose(ours(x), ref(x), atol=1e-5)


def test_serialises_and_rejects_indivisible_channels(tmp_path):
    inp = keras.Input((6, 6, 8))
    model = keras.Model(inp, GroupedConv2D(4, 3, groups=2, name="g",
                                           kernel_regularizer=keras.regularizers.L2(1e-6))(inp))
    x = np.ones((1, 6, 6, 8), "float32")
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x), model(x), atol=1e-6)
    assert len(again.losses) == 2  # one L2 penalty per group's kernel
    with pytest.raises(ConfigError, match="not divisible"):
        GroupedConv2D(6, 3, groups=4)
    with pytest.raises(ConfigError, match="input channels"):
        GroupedConv2D(4, 3, groups=2)(np.ones((1, 4, 4, 3), "float32"))
