"""Make the GPU machine's missing packages unimportable (tests put this folder first on
PYTHONPATH of a subprocess): TensorFlow and the audio/search/tuning extras it lacks, so a
test proves that training on the JAX backend never imports them."""
import sys

MISSING = ("tensorflow", "tf_keras", "librosa", "soundfile", "soxr", "av", "faiss",
           "ai_edge_litert", "keras_tuner")


class _Missing:
    """A meta-path finder that raises ModuleNotFoundError for the `MISSING` packages."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by tests/no_tf)",
                                      name=name)


sys.meta_path.insert(0, _Missing())
