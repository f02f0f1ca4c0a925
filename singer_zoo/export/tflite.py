"""TFLite files from the SavedModel's fixed-length `embed_clip` signature.

Modes (builtin ops only; every file runs with `ai_edge_litert` alone):
- `float32`: no quantisation;
- `int8`: dynamic-range quantisation (int8 weights, float activations), except the front
  end's spectral projection (Mel filterbank / CQT kernels), which stays float32: the
  hybrid int8 BATCH_MATMUL quantises its *input*, the linear power spectrum, whose
  100-dB dynamic range int8 cannot hold (measured: 37 dB error on the Mel features);
- `full-int8`: full-integer quantisation calibrated on a representative set of clips
  (int8 activations in the embedder; the front end and windowing are kept float32 by
  denylisting their nodes; input and output stay float32). Off by default: it needs
  calibration audio (figures in docs/export.md).

The app-side contract (docs/mobile.md): input `waveform` float32 (clip_samples,) mono at
22050 Hz; outputs `embedding` (D,) and `window_embeddings` (n_windows, D).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from singer_zoo.errors import ConfigError

MODES = ("float32", "int8", "full-int8")
SIGNATURE = "embed_clip"


def parse_modes(text: str) -> tuple[str, ...]:
    """'float32,int8' -> ('float32', 'int8'); '' or 'none' -> (); unknown modes raise."""
    modes = tuple(m.strip() for m in text.split(",") if m.strip() and m.strip() != "none")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ConfigError(f"unknown TFLite mode(s) {bad}; valid: {', '.join(MODES)}")
    return tuple(dict.fromkeys(modes))


def restore_float(flatbuffer: bytes, constants: Sequence[np.ndarray]) -> bytes:
    """Put the exact float32 `constants` back where the quantiser made int8 BATCH_MATMUL
    weights of the same shape, so those matmuls run in float32 (see the module doc). Where
    several constants share a shape, each weight gets the one its int8 values dequantise
    closest to."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    by_shape: dict[tuple, list[np.ndarray]] = {}
    for c in constants:
        by_shape.setdefault(tuple(c.shape), []).append(np.ascontiguousarray(c, np.float32))
    codes = [schema.BuiltinOperator.BATCH_MATMUL]
    for graph in model.subgraphs:
        for op in graph.operators:
            if model.operatorCodes[op.opcodeIndex].builtinCode not in codes:
                continue
            for i in op.inputs:
                t = graph.tensors[i]
                shape = tuple(int(d) for d in t.shape)
                if t.type != schema.TensorType.INT8 or shape not in by_shape:
                    continue
                approx = _dequantize(model.buffers[t.buffer].data, t)
                value = min(by_shape[shape], key=lambda c: np.abs(c - approx).max())
                model.buffers[t.buffer].data = np.frombuffer(value.tobytes(), np.uint8)
                t.type, t.quantization = schema.TensorType.FLOAT32, None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _dequantize(data, tensor) -> np.ndarray:
    """Float values of an int8 constant tensor (per-tensor or per-axis scale)."""
    q = tensor.quantization
    shape = [1] * len(tensor.shape)
    shape[q.quantizedDimension] = -1
    scale = np.reshape(q.scale, shape) if len(q.scale) > 1 else q.scale[0]
    return np.frombuffer(bytes(data), np.int8).reshape(tensor.shape) * scale


def _scoped_nodes(flatbuffer: bytes, scopes: Sequence[str]) -> list[str]:
    """Names of the tensors produced inside the given name scopes (e.g. "frontend_1/...")."""
    from ai_edge_litert.interpreter import Interpreter

    names = [t["name"] for t in Interpreter(model_content=flatbuffer).get_tensor_details()]
    return [n for n in names if n.split("/")[0].rstrip("_0123456789") in scopes]


def _converter(saved_model_dir, mode: str):
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                    signature_keys=[SIGNATURE])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv


def convert(saved_model_dir, mode: str, representative: Iterable[np.ndarray] = (),
            float_constants: Sequence[np.ndarray] = (),
            float_scopes: Sequence[str] = ("frontend", "windows")) -> bytes:
    """The .tflite flatbuffer of `embed_clip` in `mode`.

    int8: `float_constants` (the front end's `projections()`) are restored to float32.
    full-int8: `representative` clips (exactly the signature's length) calibrate the
    activations; every op in the `float_scopes` name scopes (the front end and the
    windowing) is denylisted from quantisation, so the spectrum stays float32.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown TFLite mode {mode!r}; valid: {', '.join(MODES)}")
    conv = _converter(saved_model_dir, mode)
    if mode == "float32":
        return conv.convert()
    if mode == "int8":
        return restore_float(conv.convert(), float_constants)
    clips = [{"waveform": np.asarray(c, np.float32)} for c in representative]
    if not clips:
        raise ConfigError("full-int8 needs representative clips (--representative)")
    conv.representative_dataset = lambda: iter(clips)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                      tf.lite.OpsSet.TFLITE_BUILTINS]
    keep = _scoped_nodes(_converter(saved_model_dir, "float32").convert(), float_scopes)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=lambda: iter(clips), debug_options=options)
    return debugger.get_nondebug_quantized_model()


def run(model, waveform: np.ndarray, num_threads: int | None = None) -> dict[str, np.ndarray]:
    """Run a .tflite (path or bytes) on one clip with ai_edge_litert; {output name: array}."""
    from ai_edge_litert.interpreter import Interpreter

    kw = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interp = Interpreter(num_threads=num_threads, **kw)
    runner = interp.get_signature_runner(SIGNATURE)
    return runner(waveform=np.asarray(waveform, np.float32))


def clips_of(waveform: np.ndarray, clip_samples: int) -> list[np.ndarray]:
    """Consecutive non-overlapping clips of exactly `clip_samples` (a short recording is
    repeated to fill one clip, as `FrameWindows` tiles a short recording's frames); the
    calibration and check inputs of the TFLite files."""
    y = np.asarray(waveform, np.float32)
    if len(y) < clip_samples:
        y = np.resize(y, clip_samples)  # tiles
    n = len(y) // clip_samples
    return [y[i * clip_samples:(i + 1) * clip_samples] for i in range(n)]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (1.0 = same direction)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
