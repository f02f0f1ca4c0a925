"""singer_zoo: a Keras 3 / TensorFlow model zoo for singer identification and
singing-performance embedding (reproducing "Learning audio features for singer
identification and embedding", ICLR 2018 submission).

Data flow: audio -> features -> models (blocks, pooling, backbone, tasks) -> training ->
evaluation -> export -> load/search -> cli.
"""
from singer_zoo.registry import get_config, list_models

__version__ = "0.1.0"


def build_model(name, num_singers: int = 46, **kwargs):
    """Build the Keras model of a zoo row (untrained).

    Args:
        name: a zoo row (`list_models()`) or a YAML config path.
        num_singers: classes of a classifier row's softmax (ignored by embedder rows).
        **kwargs: passed to `singer_zoo.models.build_from_config` (e.g. `n_frames`).

    Returns:
        Classifier rows: a softmax classifier over (batch, 256, n_bins) windows. Embedder
        rows: the siamese training model, whose single-tower embedder is `model.embedder`.

    Example:
        >>> model = singer_zoo.build_model("t1_cnn_shallow_max", num_singers=46)
        >>> model.output_shape
        (None, 46)
    """
    from singer_zoo.models.registry import build_from_config

    return build_from_config(get_config(name), num_singers=num_singers, **kwargs)


def load(name_or_path):
    """The exported model `name_or_path` as an `Embedder` (see `singer_zoo.inference.load`).

    Args:
        name_or_path: a shipped embedder's name (`singer-zoo pretrained list`; its
            SavedModel is built into the user cache on first use) or an exported folder.

    Returns:
        An `Embedder`: `embed(path_or_waveform) -> (16,)`, `embed_many`, `similarity`.

    Example:
        >>> emb = singer_zoo.load("mobile_resnext_attention")
        >>> emb.embed("song.m4a").shape
        (16,)
    """
    from singer_zoo.inference import load as _load

    return _load(name_or_path)


__all__ = ["__version__", "build_model", "get_config", "list_models", "load"]
