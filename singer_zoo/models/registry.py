"""Build the Keras model of a zoo config, dispatching on its task.

`build_from_config(cfg)` is what `singer_zoo.build_model(name)` calls: table 1 rows
(task "classifier") give the softmax classifier, table 2 and our own rows (task "siamese")
the siamese training model, whose single-tower embedder is `model.embedder`.
"""
from __future__ import annotations

import keras

from singer_zoo.config import ZooConfig
from singer_zoo.models.tasks import SiameseModel, SingerClassifier


def build_from_config(cfg: ZooConfig, num_singers: int = 46,
                      n_frames: int | None = None) -> keras.Model:
    """The task model of `cfg.train.task`: `SingerClassifier` ("classifier"; `num_singers`
    classes) or `SiameseModel` ("siamese"; `num_singers` is not used).

    `n_frames=None` builds a variable-length model for aggregating rows and a
    `cfg.features.window_frames`-frame model for "none" rows.
    """
    if cfg.train.task == "classifier":
        return SingerClassifier.from_zoo_config(cfg, num_singers, n_frames)
    return SiameseModel.from_zoo_config(cfg, n_frames)
