"""Task heads on the shared backbone (paper sections 3.4, 3.5).

- `build_classifier`: backbone -> Dense(num_singers, softmax)  (singer identification);
- `build_embedder`: backbone -> Dense(embedding_dim) linear     (performance embedding, 16-d);
- `build_siamese`: `SiameseModel`, two inputs through ONE shared embedder, output the squared
  Euclidean distance D = ||G(x1) - G(x2)||^2 (eq. 4), trained with `contrastive_loss` (eq. 5).

The backbone is a nested model named "backbone" (`model.get_layer("backbone")`), so its
weights can be moved between tasks.
"""
from __future__ import annotations

import keras
from keras import ops

from singer_zoo.config import ZooConfig
from singer_zoo.errors import ConfigError
from singer_zoo.models.backbone import build_backbone


def input_frames(cfg: ZooConfig, n_frames: int | None) -> int | None:
    """Input length: as given; for "none" rows (fixed size) default to the window length."""
    if n_frames is None and cfg.arch.aggregation == "none":
        return cfg.features.window_frames
    return n_frames


def _head(cfg: ZooConfig, units: int, activation, out_name: str, n_frames, model_name):
    n_frames = input_frames(cfg, n_frames)
    backbone = build_backbone(cfg.arch, cfg.features.n_bins, n_frames, name="backbone")
    inputs = keras.Input((n_frames, cfg.features.n_bins), name="features")
    reg = keras.regularizers.L2(cfg.arch.l2) if cfg.arch.l2 else None
    # float32 output even under a mixed_float16 policy: softmax / distances stay accurate
    outputs = keras.layers.Dense(units, activation=activation, kernel_regularizer=reg,
                                 dtype="float32", name=out_name)(backbone(inputs))
    return keras.Model(inputs, outputs, name=model_name)


def build_classifier(cfg: ZooConfig, num_singers: int = 46,
                     n_frames: int | None = None) -> keras.Model:
    """(batch, frames, bins) -> (batch, num_singers) softmax probabilities."""
    if not isinstance(num_singers, int) or isinstance(num_singers, bool) or num_singers < 2:
        raise ConfigError(f"num_singers must be an integer >= 2, got {num_singers!r}")
    return _head(cfg, num_singers, "softmax", "singer", n_frames, f"{cfg.name}_classifier")


def build_embedder(cfg: ZooConfig, n_frames: int | None = None) -> keras.Model:
    """(batch, frames, bins) -> (batch, embedding_dim) linear embedding."""
    return _head(cfg, cfg.arch.embedding_dim, None, "embedding", n_frames, "embedder")


@keras.saving.register_keras_serializable(package="singer_zoo")
class SquaredDistance(keras.layers.Layer):
    """[a, b] each (batch, dim) -> (batch,) squared Euclidean distance sum((a - b)^2)."""

    def call(self, inputs):
        a, b = inputs
        return ops.sum(ops.square(a - b), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)


@keras.saving.register_keras_serializable(package="singer_zoo")
class SiameseModel(keras.Model):
    """Siamese training model: inputs [x1, x2], output D (batch,) from one shared `embedder`.

    Both towers are the same Keras model object, so they share every weight; after training
    `model.embedder` is the single-tower embedder to export.
    """

    def __init__(self, embedder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.embedder = embedder
        self.distance = SquaredDistance(dtype="float32", name="distance")

    def build(self, input_shape):
        # The embedder is a built functional model and the distance has no weights.
        self.built = True

    def call(self, inputs, training=None):
        x1, x2 = inputs
        e1 = self.embedder(x1, training=training)  # (batch, dim)
        e2 = self.embedder(x2, training=training)  # (batch, dim)
        return self.distance([e1, e2])  # (batch,)

    def get_config(self):
        return {**super().get_config(),
                "embedder": keras.saving.serialize_keras_object(self.embedder)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["embedder"] = keras.saving.deserialize_keras_object(
            config["embedder"], custom_objects=custom_objects)
        return cls(**config)


def build_siamese(cfg: ZooConfig, n_frames: int | None = None) -> SiameseModel:
    """The section 3.5 siamese network around `build_embedder(cfg, n_frames)`."""
    model = SiameseModel(build_embedder(cfg, n_frames), name=f"{cfg.name}_siamese")
    shape = (None, input_frames(cfg, n_frames), cfg.features.n_bins)
    model.build([shape, shape])
    return model


def _per_pair_loss(y_true, distance, margin: float):
    """0.5 y D + 0.5 (1 - y) max(0, m - D) for each pair: (batch,)."""
    d = ops.convert_to_tensor(distance)
    y = ops.cast(ops.reshape(y_true, ops.shape(d)), d.dtype)
    return 0.5 * y * d + 0.5 * (1.0 - y) * ops.maximum(0.0, margin - d)


@keras.saving.register_keras_serializable(package="singer_zoo")
def contrastive_loss(y_true, distance, margin: float = 1.0):
    """Contrastive loss (eq. 5): mean(0.5 y D + 0.5 (1 - y) max(0, m - D)).

    `y_true` is 1 for a same-singer pair and 0 otherwise; `distance` is the squared
    Euclidean distance D output by `SiameseModel`.
    """
    return ops.mean(_per_pair_loss(y_true, distance, margin))


@keras.saving.register_keras_serializable(package="singer_zoo")
class ContrastiveLoss(keras.losses.Loss):
    """`contrastive_loss` with its margin (TrainConfig.margin) as a serialisable Loss."""

    def __init__(self, margin: float = 1.0, name: str = "contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        return _per_pair_loss(y_true, y_pred, self.margin)  # (batch,), averaged by Loss

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
