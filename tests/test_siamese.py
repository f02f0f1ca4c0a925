"""Siamese model and contrastive loss (paper section 3.5, eqs. 4-5)."""
import keras
import numpy as np
import pytest

from singer_zoo.config import ArchConfig, FeatureConfig, TrainConfig, ZooConfig
from singer_zoo.models import (ContrastiveLoss, SiameseModel, build_embedder, build_siamese,
                               contrastive_loss)

TINY = ZooConfig(name="tiny", table="beyond",
                 features=FeatureConfig(n_bins=16, window_frames=32, window_hop_frames=8),
                 arch=ArchConfig(block="resnext", stem_filters=4, stages=[[8]], cardinality=2,
                                 stem_kernel=3, kernel=3, aggregation="attention",
                                 dense_units=8, dense_layers=1, embedding_dim=3),
                 train=TrainConfig(task="siamese", batch_size=4))
RNG = np.random.default_rng(1)


@pytest.fixture(autouse=True)
def _clear():
    yield
    keras.backend.clear_session()


def _windows(n, frames=32):
    return RNG.uniform(0, 60, size=(n, frames, 16)).astype("float32")


@pytest.mark.parametrize("y,d,expected", [
    ([1], [0.3], 0.15),          # same singer: 0.5 * D
    ([0], [0.3], 0.35),          # different, inside the margin: 0.5 * (1 - D)
    ([0], [1.5], 0.0),           # different, beyond the margin: no loss
    ([1], [0.0], 0.0),
    ([1, 0, 0, 1], [2.0, 0.2, 4.0, 0.5], (1.0 + 0.4 + 0.0 + 0.25) / 4),
])
def test_contrastive_loss_hand_computed(y, d, expected):
    y, d = np.array(y, "float32"), np.array(d, "float32")
    assert float(contrastive_loss(y, d)) == pytest.approx(expected, abs=1e-6)
    assert float(ContrastiveLoss()(y, d)) == pytest.approx(expected, abs=1e-6)


def test_contrastive_loss_margin_and_label_shapes():
    y, d = np.array([[0], [1]], "int64"), np.array([0.5, 0.5], "float32")  # labels (batch, 1)
    assert float(contrastive_loss(y, d, margin=2.0)) == pytest.approx((0.75 + 0.25) / 2)
    loss = ContrastiveLoss(margin=2.0)
    assert float(loss(y, d)) == pytest.approx(0.5)
    assert ContrastiveLoss.from_config(loss.get_config()).margin == 2.0


def test_siamese_shares_one_embedder_and_outputs_squared_distance():
    model = build_siamese(TINY)
    assert isinstance(model, SiameseModel) and model.embedder.name == "embedder"
    assert model.count_params() == model.embedder.count_params()
    assert len(model.trainable_weights) == len(model.embedder.trainable_weights)
    a, b = _windows(3), _windows(3)
    d = np.asarray(model([a, b]))
    ea, eb = np.asarray(model.embedder(a)), np.asarray(model.embedder(b))
    assert d.shape == (3,)
    np.testing.assert_allclose(d, ((ea - eb) ** 2).sum(1), rtol=1e-5)
    np.testing.assert_allclose(model([b, a]), d, rtol=1e-6)
    np.testing.assert_allclose(model([a, a]), 0.0, atol=1e-6)


def test_siamese_variable_length_and_fixed_length():
    model = build_siamese(TINY)  # attention: any length
    assert model([_windows(2, 40), _windows(2, 24)]).shape == (2,)
    fixed = build_embedder(TINY.replace(arch={"aggregation": "none"}))
    assert fixed.input_shape == (None, 32, 16)  # "none" rows default to window_frames


def test_siamese_trains_the_shared_weights(tmp_path):
    model = build_siamese(TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=ContrastiveLoss(1.0),
                  jit_compile=False)
    a, b = _windows(8), _windows(8)
    y = np.array([1, 0] * 4, "float32")
    before = [w.copy() for w in model.embedder.get_weights()]
    history = model.fit([a, b], y, batch_size=4, epochs=3, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    changed = [not np.allclose(w0, w1) for w0, w1 in zip(before, model.embedder.get_weights())]
    assert sum(changed) > len(changed) // 2
    path = tmp_path / "siamese.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SiameseModel) and isinstance(loaded.loss, ContrastiveLoss)
    np.testing.assert_allclose(loaded.predict([a, b], verbose=0),
                               model.predict([a, b], verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.embedder(a), model.embedder(a), rtol=1e-5, atol=1e-6)
    # the reloaded model keeps training with its compiled loss
    loaded.fit([a, b], y, batch_size=4, epochs=1, verbose=0)


def test_siamese_config_round_trip_rebuilds_the_embedder():
    model = build_siamese(TINY)
    clone = SiameseModel.from_config(model.get_config())
    assert clone.embedder.count_params() == model.embedder.count_params()
    assert [layer.name for layer in clone.embedder.layers] == \
        [layer.name for layer in model.embedder.layers]
