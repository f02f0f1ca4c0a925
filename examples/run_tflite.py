"""Run an exported singer_zoo .tflite the way an app would: ai_edge_litert, numpy,
soundfile and soxr only (no TensorFlow, no singer_zoo). See docs/mobile.md.

    python examples/run_tflite.py exported/NAME/model_int8.tflite a.wav [b.wav]

Prints the D-d embedding of each recording (D = 16, or 128 for the `_128d` rows) and,
for two recordings, their squared distance and similarity exp(-distance).

The model's contract: input `waveform`, float32, mono, 22050 Hz, exactly N samples
(N = the input's length, 132300 = 6 s); outputs `embedding` (D,) and
`window_embeddings` (n_windows, D). A recording is cut into consecutive N-sample clips
(a last partial clip of at least N / 2 samples becomes the recording's last N samples; a
recording shorter than N is repeated to fill one clip; silent clips are skipped) and the
clip embeddings are averaged.
"""
import sys

import numpy as np
import soundfile as sf
import soxr
from ai_edge_litert.interpreter import Interpreter

RATE = 22050
SILENT = 1e-4  # a clip whose peak is below this holds no voice


def read_mono(path: str) -> np.ndarray:
    """Decode a file to float32 mono at 22050 Hz (average channels, then resample)."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return soxr.resample(y, sr, RATE, quality="HQ").astype(np.float32) if sr != RATE else y


def clips(y: np.ndarray, n: int) -> list:
    """Consecutive n-sample clips, each only the recording's own audio: a last partial
    clip of at least n / 2 samples is the recording's last n samples, a recording shorter
    than n is repeated to n; silent clips (peak < SILENT) are dropped unless all are."""
    if len(y) < n:
        return [np.resize(y, n)]  # tiles
    full = [y[i:i + n] for i in range(0, len(y) - n + 1, n)]
    if len(y) - len(full) * n >= n // 2:
        full.append(y[-n:])
    voiced = [c for c in full if np.abs(c).max() >= SILENT]
    return voiced or full


def embed(runner, n: int, y: np.ndarray) -> np.ndarray:
    outs = [runner(waveform=c)["embedding"] for c in clips(y, n)]
    return np.mean(outs, axis=0)


def main(model_path: str, *audio: str) -> None:
    interp = Interpreter(model_path=model_path, num_threads=1)
    runner = interp.get_signature_runner("embed_clip")
    n = int(runner.get_input_details()["waveform"]["shape"][0])
    embs = [embed(runner, n, read_mono(p)) for p in audio]
    for p, e in zip(audio, embs):
        print(p, np.array2string(e, precision=4, max_line_width=200))
    if len(embs) == 2:
        d = float(np.sum((embs[0] - embs[1]) ** 2))
        print(f"squared distance {d:.4f}  similarity {np.exp(-d):.4f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
