"""Task models around the shared `SingerBackbone` (paper sections 3.4, 3.5), keras-hub style.

- `SingerClassifier`: backbone -> Dense(num_singers, softmax) `singer` (singer identification);
- `SingerEmbedder`: backbone -> Dense(embedding_dim) linear `embedding` (performance
  embedding, 16-d);
- `SiameseModel`: two inputs through ONE shared `SingerEmbedder`, output the squared
  Euclidean distance D = ||G(x1) - G(x2)||^2 (eq. 4), trained with `contrastive_loss` (eq. 5).

Each is built in `__init__` from explicit arguments and returns them from `get_config`;
`from_preset(name)` builds a zoo row (untrained) and `from_zoo_config(cfg)` any `ZooConfig`.
The classifier and the embedder describe themselves: they carry the front end their inputs
are computed with (`features`, a `FeatureConfig`) and the zoo row they were built from
(`zoo_name`), so a saved `.keras` file needs no config beside it (`zoo_config_of`). The
backbone is a nested model named "backbone" (`model.backbone`, `model.get_layer("backbone")`),
so its weights can be moved between tasks. `build_classifier` / `build_embedder` /
`build_siamese` are the same constructors as functions of a `ZooConfig`.
"""
from __future__ import annotations

import keras
from keras import ops

from singer_zoo.config import FeatureConfig, TrainConfig, ZooConfig
from singer_zoo.errors import ConfigError, UnknownNameError
from singer_zoo.models.backbone import BACKBONE_FIELDS, SingerBackbone


def input_frames(cfg: ZooConfig, n_frames: int | None) -> int | None:
    """Input length: as given; for "none" rows (fixed size) default to the window length."""
    if n_frames is None and cfg.arch.aggregation == "none":
        return cfg.features.window_frames
    return n_frames


def _backbone(cfg: ZooConfig, n_frames: int | None) -> SingerBackbone:
    return SingerBackbone.from_arch(cfg.arch, cfg.features.n_bins, input_frames(cfg, n_frames))


class _Preset:
    """`from_preset(name)`: a task model of a zoo row, through its `from_zoo_config`."""

    @classmethod
    def from_preset(cls, name: str, **kwargs):
        """The (untrained) model of zoo row `name` (`singer_zoo.list_models()`, or a config
        YAML path); `kwargs` go to `from_zoo_config`. `UnknownNameError` lists the valid
        names. Trained weights: `singer_zoo.load(name)` (exported) or the shipped
        embedder.keras (`singer_zoo.pretrained.source`)."""
        from singer_zoo.registry import get_config

        return cls.from_zoo_config(get_config(name), **kwargs)


class _Task(_Preset, keras.Model):
    """A functional model: `backbone` -> one Dense head named `head_name`, carrying the
    front end (`features`) and the zoo row (`zoo_name`) it belongs to."""

    head_name = ""

    def __init__(self, backbone: SingerBackbone, units: int, activation=None,
                 features: FeatureConfig | dict | None = None, zoo_name: str | None = None,
                 unit: bool = False, **kwargs):
        if not isinstance(backbone, SingerBackbone):
            raise ConfigError(f"{type(self).__name__} needs a SingerBackbone, got "
                              f"{type(backbone).__name__}")
        inputs = keras.Input(backbone.input_shape[1:], name="features")
        reg = keras.regularizers.L2(backbone.arch.l2) if backbone.arch.l2 else None
        # float32 output even under a mixed precision policy: softmax / distances stay accurate
        outputs = keras.layers.Dense(units, activation=activation, kernel_regularizer=reg,
                                     dtype="float32", name=self.head_name)(backbone(inputs))
        if unit:  # (batch, units) of length 1: squared distances lie in [0, 4]
            outputs = keras.layers.UnitNormalization(dtype="float32",
                                                     name=f"{self.head_name}_unit")(outputs)
        super().__init__(inputs, outputs, **kwargs)
        self.backbone = backbone
        self.features = FeatureConfig.from_dict(features) if isinstance(features, dict) \
            else features
        self.zoo_name = zoo_name

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "features": self.features.to_dict() if self.features is not None else None,
                "zoo_name": self.zoo_name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"], custom_objects=custom_objects)
        return cls(**config)


@keras.saving.register_keras_serializable(package="singer_zoo")
class SingerClassifier(_Task):
    """(batch, frames, bins) -> (batch, num_singers) softmax probabilities.

    Args:
        backbone: a `SingerBackbone`.
        num_singers: classes of the softmax (an integer >= 2).
        features: the `FeatureConfig` (or its dict) of the inputs, carried in the config.
        zoo_name: the zoo row the model belongs to, carried in the config.

    Example:
        >>> clf = SingerClassifier.from_preset("t1_cnn_shallow_max", num_singers=46)
        >>> clf.output_shape
        (None, 46)
    """

    head_name = "singer"

    def __init__(self, backbone: SingerBackbone, num_singers: int = 46,
                 features: FeatureConfig | dict | None = None, zoo_name: str | None = None,
                 name: str = "classifier", **kwargs):
        if not isinstance(num_singers, int) or isinstance(num_singers, bool) or \
                num_singers < 2:
            raise ConfigError(f"num_singers must be an integer >= 2, got {num_singers!r}")
        super().__init__(backbone, num_singers, "softmax", features, zoo_name, name=name,
                         **kwargs)
        self.num_singers = num_singers

    def get_config(self) -> dict:
        return {**super().get_config(), "num_singers": self.num_singers}

    @classmethod
    def from_zoo_config(cls, cfg: ZooConfig, num_singers: int = 46,
                        n_frames: int | None = None) -> SingerClassifier:
        """The classifier of `cfg`'s architecture; `n_frames=None` is variable-length for
        aggregating rows and `cfg.features.window_frames` for "none" rows."""
        return cls(_backbone(cfg, n_frames), num_singers, cfg.features, cfg.name,
                   name=f"{cfg.name}_classifier")


@keras.saving.register_keras_serializable(package="singer_zoo")
class SingerEmbedder(_Task):
    """(batch, frames, bins) -> (batch, embedding_dim) linear embedding.

    Args:
        backbone: a `SingerBackbone`.
        embedding_dim: size of the embedding (16 in the paper).
        unit_embedding: L2-normalise the embedding (`ArchConfig.unit_embedding`; rows
            trained with a cosine softmax, `singer_zoo.training.cosine_softmax`).
        features: the `FeatureConfig` (or its dict) of the inputs, carried in the config:
            `singer_zoo.export` computes the deployed front end from it.
        zoo_name: the zoo row the model belongs to, carried in the config.

    Example:
        >>> emb = SingerEmbedder.from_preset("mobile_resnext_attention")
        >>> emb.output_shape, emb.features.n_bins, emb.zoo_name
        ((None, 16), 96, 'mobile_resnext_attention')
    """

    head_name = "embedding"

    def __init__(self, backbone: SingerBackbone, embedding_dim: int = 16,
                 features: FeatureConfig | dict | None = None, zoo_name: str | None = None,
                 unit_embedding: bool = False, name: str = "embedder", **kwargs):
        super().__init__(backbone, embedding_dim, None, features, zoo_name,
                         unit=unit_embedding, name=name, **kwargs)
        self.embedding_dim, self.unit_embedding = embedding_dim, bool(unit_embedding)

    def get_config(self) -> dict:
        return {**super().get_config(), "embedding_dim": self.embedding_dim,
                "unit_embedding": self.unit_embedding}

    @classmethod
    def from_zoo_config(cls, cfg: ZooConfig, n_frames: int | None = None) -> SingerEmbedder:
        """The embedder of `cfg`'s architecture (`n_frames` as `SingerClassifier`)."""
        return cls(_backbone(cfg, n_frames), cfg.arch.embedding_dim, cfg.features, cfg.name,
                   cfg.arch.unit_embedding)


def build_classifier(cfg: ZooConfig, num_singers: int = 46,
                     n_frames: int | None = None) -> SingerClassifier:
    """`SingerClassifier.from_zoo_config(cfg, num_singers, n_frames)`."""
    return SingerClassifier.from_zoo_config(cfg, num_singers, n_frames)


def build_embedder(cfg: ZooConfig, n_frames: int | None = None) -> SingerEmbedder:
    """`SingerEmbedder.from_zoo_config(cfg, n_frames)`."""
    return SingerEmbedder.from_zoo_config(cfg, n_frames)


@keras.saving.register_keras_serializable(package="singer_zoo")
class SquaredDistance(keras.layers.Layer):
    """[a, b] each (batch, dim) -> (batch,) squared Euclidean distance sum((a - b)^2)."""

    def call(self, inputs):
        a, b = inputs
        return ops.sum(ops.square(a - b), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)


@keras.saving.register_keras_serializable(package="singer_zoo")
class SiameseModel(_Preset, keras.Model):
    """Siamese training model: inputs [x1, x2], output D (batch,) from one shared `embedder`.

    Both towers are the same Keras model object, so they share every weight; after training
    `model.embedder` is the single-tower embedder to export.

    Args:
        embedder: a `SingerEmbedder` (or, in files saved before the task classes, a plain
            functional embedder).

    Example:
        >>> sia = SiameseModel.from_preset("t2_resnext_shallow_attention")
        >>> sia.embedder.output_shape
        (None, 16)
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

    @classmethod
    def from_zoo_config(cls, cfg: ZooConfig, n_frames: int | None = None) -> SiameseModel:
        """The section 3.5 siamese network around `SingerEmbedder.from_zoo_config(cfg,
        n_frames)`, built."""
        model = cls(SingerEmbedder.from_zoo_config(cfg, n_frames), name=f"{cfg.name}_siamese")
        shape = (None, input_frames(cfg, n_frames), cfg.features.n_bins)
        model.build([shape, shape])
        return model


def build_siamese(cfg: ZooConfig, n_frames: int | None = None) -> SiameseModel:
    """`SiameseModel.from_zoo_config(cfg, n_frames)`."""
    return SiameseModel.from_zoo_config(cfg, n_frames)


def zoo_config_of(model: keras.Model) -> ZooConfig | None:
    """The `ZooConfig` a trained model describes: the front end and zoo row its classifier
    or embedder carries, with the architecture of its backbone; the row's other fields
    (table, description, train section, paper figures) come from the zoo's config of that
    name when it has one. None for a model saved before the task classes (a plain
    functional model), which needs the config.yaml or model card it was saved beside.

    Example:
        >>> zoo_config_of(keras.saving.load_model("runs/r1/best.keras")).name
        'mobile_resnext_attention'
    """
    from singer_zoo.registry import get_config

    task = model.embedder if isinstance(model, SiameseModel) else model
    if not isinstance(task, _Task) or task.features is None or not task.zoo_name:
        return None
    kind = "classifier" if isinstance(task, SingerClassifier) else "siamese"
    try:
        base = get_config(task.zoo_name)
    except UnknownNameError:
        base = ZooConfig(task.zoo_name, "beyond", train=TrainConfig(task=kind))
    arch = {f: getattr(task.backbone.arch, f) for f in BACKBONE_FIELDS}
    if kind == "siamese":
        arch["embedding_dim"] = task.embedding_dim
        arch["unit_embedding"] = task.unit_embedding
    return base.replace(features=task.features, arch=arch, train={"task": kind})


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
