"""singer_zoo: a Keras 3 / TensorFlow model zoo for singer identification and
singing-performance embedding (reproducing "Learning audio features for singer
identification and embedding", ICLR 2018 submission).

Data flow: audio -> features -> models (blocks, pooling, backbone, tasks) -> training ->
evaluation -> export -> load/search -> cli.
"""
from singer_zoo.registry import get_config, list_models

__version__ = "0.1.0"


def build_model(name, num_singers: int = 46, **kwargs):
    """Build the Keras model of a zoo row by name (see `list_models()`).

    Classifier rows return a softmax classifier; embedder rows the siamese training model,
    whose single-tower embedder is `model.embedder`.
    """
    from singer_zoo.models.registry import build_from_config

    return build_from_config(get_config(name), num_singers=num_singers, **kwargs)


def load(name_or_path):
    """The exported model `name_or_path` as an `Embedder` (see `singer_zoo.inference`)."""
    from singer_zoo.inference import load as _load

    return _load(name_or_path)


__all__ = ["__version__", "build_model", "get_config", "list_models", "load"]
