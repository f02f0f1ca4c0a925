"""ONNX export of the embedder, for app developers who are not on TensorFlow.

`model.onnx` maps precomputed Mel windows `features` (batch, window_frames, n_bins) float32
to embeddings (batch, D): the `embed_windows` signature of the SavedModel. The front end
(waveform -> dB Mel windows) is not inside it; an app computes it as
`singer_zoo.features.extract_windows` does (parameters in the card's `frontend`), or uses
the TFLite files, which include it. Written with Keras' own `Model.export(format="onnx")`
(tf2onnx under the TensorFlow backend) and checked with onnxruntime against the Keras
embedder on the windows of the check audio. Needs the `onnx` extra:
`pip install "singer_zoo[onnx]"` (tf2onnx, onnx, onnxruntime).
"""
from __future__ import annotations

import numpy as np

from singer_zoo.errors import ConfigError, ExportCheckError

ONNX_FILE = "model.onnx"


def _require() -> None:
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"ONNX export needs the onnx extra ({e.name} is not installed): "
                          f'pip install "singer_zoo[onnx]"') from None


def write(embedder, path, window_frames: int, n_bins: int) -> None:
    """Write `embedder` (windows -> embeddings) as an ONNX file at `path`."""
    _require()
    embedder(np.zeros((1, window_frames, n_bins), np.float32))  # Keras exports called models
    embedder.export(str(path), format="onnx", verbose=False)


def run(path, windows) -> np.ndarray:
    """(batch, D) embeddings of `windows` (batch, window_frames, n_bins) with onnxruntime.

    Example:
        >>> run("exported/NAME/model.onnx", np.zeros((2, 256, 96), np.float32)).shape
        (2, 16)
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(windows, np.float32)})[0]


def check(path, windows, reference: np.ndarray, tolerance: float) -> float:
    """Largest |ONNX - Keras| over `windows`; ExportCheckError above `tolerance`."""
    err = float(np.abs(run(path, windows) - reference).max())
    if not err <= tolerance:
        raise ExportCheckError(f"{path}: ONNX differs from the Keras model by {err:.3g} "
                               f"(tolerance {tolerance:g})")
    return err
